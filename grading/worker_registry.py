"""Live workers, as they describe themselves: the queue estimate needs to know how
many submissions are graded at once.

Each worker's main process, once ready, writes one GradingWorker row (its name,
its queues, its pool size) and rewrites `seen_at` every budget.WORKER_BEAT_INTERVAL_S
from a thread of its own; a clean shutdown deletes the row. A killed worker cannot
say goodbye: its row stops counting once `seen_at` is older than WORKER_LIVE_S.

Why not ask Celery (`inspect().active_queues()`, `ping`)? That is a broadcast that
waits its whole timeout for replies: a second or more on every page poll. Why not
Redis? The development setup (`make run`) has no Redis; every setup has the database.
The queues are read on every beat, so `add_consumer` / `cancel_consumer` show within
one beat.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.db import DatabaseError, connection
from django.utils import timezone

from . import budget
from .models import GradingWorker

log = logging.getLogger(__name__)


def _describe(consumer) -> tuple[str, int, list[str]]:
    task_consumer = getattr(consumer, "task_consumer", None)
    queues = sorted({queue.name for queue in getattr(task_consumer, "queues", None) or []})
    slots = getattr(getattr(consumer, "pool", None), "limit", None) or 1
    return str(consumer.hostname), int(slots), queues


def worker_beat(*, name: str, slots: int, queues: list[str]) -> None:
    """Record that worker `name` is alive with these queues and slots (idempotent)."""
    GradingWorker.objects.update_or_create(
        name=name[:200], defaults={"slots": slots, "queues": queues, "seen_at": timezone.now()}
    )


def worker_forget(*, name: str) -> None:
    GradingWorker.objects.filter(name=name[:200]).delete()


def workers_forget_gone(*, now=None) -> int:
    """Delete the rows of workers silent for a day (killed ones never say goodbye, and
    containers come back under new names); the reaper calls it. Returns how many."""
    cutoff = (now or timezone.now()) - timedelta(seconds=budget.WORKER_FORGET_S)
    deleted, _ = GradingWorker.objects.filter(seen_at__lt=cutoff).delete()
    return deleted


class _Beat:
    def __init__(self, consumer):
        self.consumer = consumer
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="worker-registry")

    def _loop(self) -> None:
        try:
            while True:
                try:
                    name, slots, queues = _describe(self.consumer)
                    worker_beat(name=name, slots=slots, queues=queues)
                except Exception as exc:
                    # The estimate is a nicety: a database hiccup must not stop the worker.
                    log.warning("worker registry: beat failed (%s)", exc)
                    try:
                        connection.close()
                    except DatabaseError:
                        pass
                if self.stop.wait(budget.WORKER_BEAT_INTERVAL_S):
                    return
        finally:
            try:
                connection.close()
            except DatabaseError:
                pass


_beat: _Beat | None = None


def on_worker_ready(sender=None, **kwargs) -> None:
    """celery.signals.worker_ready: start beating (the sender is the worker's Consumer)."""
    global _beat
    if sender is None or _beat is not None:
        return
    _beat = _Beat(sender)
    _beat.thread.start()


def on_worker_shutdown(sender=None, **kwargs) -> None:
    """celery.signals.worker_shutdown: stop beating and remove this worker's row."""
    global _beat
    beat, _beat = _beat, None
    if beat is None:
        return
    beat.stop.set()
    beat.thread.join(timeout=10)
    try:
        worker_forget(name=_describe(beat.consumer)[0])
    except Exception as exc:
        log.warning("worker registry: could not remove this worker (%s)", exc)
    finally:
        connection.close()
