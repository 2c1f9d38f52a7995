"""Which submission a log line belongs to: every record carries `submission_id`
("-" outside a grading run), so a run's lines can be found across the worker's
log, whatever module wrote them (the runner, the sandbox, docker's client)."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager

current_submission: contextvars.ContextVar[str] = contextvars.ContextVar("submission_id", default="-")

_base_factory = logging.getLogRecordFactory()


def _record_factory(*args, **kwargs) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.submission_id = current_submission.get()
    return record


def install() -> None:
    """Make every LogRecord carry `submission_id` (idempotent)."""
    if logging.getLogRecordFactory() is not _record_factory:
        logging.setLogRecordFactory(_record_factory)


@contextmanager
def submission(submission_id: object) -> Iterator[None]:
    """Within this block (and threads started with `contextvars.copy_context()`),
    log records name the submission."""
    token = current_submission.set(str(submission_id))
    try:
        yield
    finally:
        current_submission.reset(token)
