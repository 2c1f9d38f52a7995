"""A real worker records itself for the queue estimate, and says goodbye on shutdown."""

from __future__ import annotations

import pytest

from grading.models import GradingWorker
from tests.grading.test_worker import wait_for
from tests.grading.workers import Worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_running_worker_counts_as_one_grader_until_it_stops(worker_env):
    queue = worker_env["SHIPWRIGHT_GRADING_QUEUE"]
    worker = Worker(worker_env)
    try:
        wait_for(lambda: GradingWorker.objects.grading_slots(queue=queue) == 1, 120, "the worker's first beat")
        row = GradingWorker.objects.get()
        # The test worker also takes intake (tests/grading/workers.py); it still counts
        # as one grader, for the grading queue it serves.
        expected = {
            queue,
            worker_env["SHIPWRIGHT_LOW_QUEUE"],
            worker_env["SHIPWRIGHT_INTAKE_QUEUE"],
            worker_env["SHIPWRIGHT_CERTIFICATES_QUEUE"],
        }
        assert row.slots == 1 and set(row.queues) == expected
    finally:
        worker.stop()
    assert worker.process.returncode == 0
    assert not GradingWorker.objects.exists()
