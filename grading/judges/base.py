"""What every judge shares: its verdicts (Fail, Skip), the evidence it is handed,
and the helpers that read that evidence the same way for every check kind.

Every verdict is computed on the grader's side from three kinds of evidence: how
each stage ended (reported by the engine), files read back from the workspace
(without following links), and the observations a grader-owned stage wrote.
Expectations (hidden labels, the reference solution's observations) never enter a
sandbox, so nothing learner code prints or writes can award itself points.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from labs.lab_spec import Limits, StageSpec

from ..learner_files import LearnerFileError, load_json

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"

FILE_MISSING = "{path} was not found after stage {stage!r} (or is not a regular file)"
NOT_A_NUMBER = "{path} field {field!r} must be a finite number, got {value}"
SKIPPED_BECAUSE = "skipped because {need} failed"
# How a stage ended, in one sentence (StageOutcome.summary); {label} names the stage.
STAGE_TIMED_OUT = "{label} was stopped after {seconds} s (the time limit)"
STAGE_OUT_OF_MEMORY = "killed: the {memory} memory limit was reached"
STAGE_PIDS_LIMIT = "{label} exited with code {code} after hitting the limit of {pids} processes and threads"
STAGE_EXITED_0 = "{label} exited 0 in {duration:.1f} s"
STAGE_KILLED = "{label} was killed by signal {signal}"
STAGE_EXITED = "{label} exited with code {code}"


class Fail(Exception):
    """A check failed, with feedback for the learner."""


class Skip(Exception):
    """A check could not run because a stage it depends on did not run."""


@dataclass
class StageOutcome:
    """How one stage ended, plus what was read back right after it."""

    spec: StageSpec
    limits: Limits
    status: str  # "ran" | "skipped"
    skipped_because: str = ""
    exit_code: int | None = None
    timed_out: bool = False
    oom_killed: bool = False
    pids_limit_hit: bool = False
    duration_s: float = 0.0
    cpu_s: float | None = None
    peak_memory_mb: float | None = None
    output: str = ""
    output_truncated_bytes: int = 0
    # Workspace files read after the stage: path -> bytes, or None when missing,
    # not a regular file, or too large.
    files: dict[str, bytes | None] = field(default_factory=dict)
    # Why a file the checks need could not be read back (too large), by path.
    file_errors: dict[str, str] = field(default_factory=dict)
    observations: dict[str, Any] | None = None
    observations_error: str = ""
    # A service stage that ran the learner's built image: what the host saw of that
    # container (Sandbox.run_image_service): process uids, state, health, output.
    container: dict[str, Any] | None = None
    # Set when the stage could not start because of the submission itself (for
    # example, it does not fit in the workspace): the learner's failure, in words.
    blocked: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "ran" and self.exit_code == 0 and not self.timed_out and not self.oom_killed

    @property
    def label(self) -> str:
        if self.spec.service is not None and self.spec.service.image_from is not None:
            return "the server of your image"
        if self.spec.service is not None:
            return f"the server ({' '.join(self.spec.service.start)})"
        if self.spec.pytest is not None:
            return "your test suite"
        if self.spec.ci is not None:
            return "your CI job"
        if self.spec.collect is not None:
            return "reading your repository"
        if self.spec.build is not None:
            return f"docker build of your {self.spec.build.dockerfile}"
        return command_label(self.spec.run)

    def summary(self) -> str:
        """One sentence a learner understands about how the stage ended."""
        if self.blocked:
            return self.blocked
        if self.status == "skipped":
            return SKIPPED_BECAUSE.format(need=self.skipped_because)
        if self.timed_out:
            return STAGE_TIMED_OUT.format(label=self.label, seconds=_seconds(self.limits.time_s))
        if self.oom_killed:
            return STAGE_OUT_OF_MEMORY.format(memory=_memory(self.limits.memory_mb))
        if self.pids_limit_hit and self.exit_code != 0:
            return STAGE_PIDS_LIMIT.format(label=self.label, code=self.exit_code, pids=self.limits.pids)
        if self.exit_code == 0:
            return STAGE_EXITED_0.format(label=self.label, duration=self.duration_s)
        if self.exit_code is not None and self.exit_code < 0 or (self.exit_code or 0) > 128:
            return STAGE_KILLED.format(label=self.label, signal=abs(self.exit_code or 0) % 128)
        return STAGE_EXITED.format(label=self.label, code=self.exit_code)


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    status: str
    score: float
    max_score: float
    required: bool
    output: str
    hint: str = ""


@dataclass(frozen=True)
class Evidence:
    """Everything a judge may look at: each stage's outcome (with the files read back
    and the observations it recorded), the lab's hidden labels by path, and the
    reference solution's observations by stage (None when the lab has none)."""

    outcomes: dict[str, StageOutcome]
    labels: dict[str, list[int]] = field(default_factory=dict)
    reference: dict[str, dict[str, Any]] | None = None

    def stage(self, name: str) -> StageOutcome:
        """The stage's outcome; Skip when it did not run."""
        outcome = self.outcomes[name]
        if outcome.status == "skipped":
            raise Skip(SKIPPED_BECAUSE.format(need=outcome.skipped_because))
        return outcome

    def observation_set(self, stage: str) -> dict:
        """Every observation of a grader-owned stage; Fail when there are none."""
        outcome = self.stage(stage)
        if outcome.observations is None:
            raise Fail(
                f"the grader could not examine your work in stage {stage!r}: "
                f"{outcome.observations_error or outcome.summary()}"
            )
        return outcome.observations

    def observation(self, stage: str, key: str) -> Any:
        """One recorded observation; Fail when it is absent."""
        outcome = self.stage(stage)
        if outcome.observations is None:
            reason = outcome.observations_error or outcome.summary()
            raise Fail(f"the grader could not examine your work in stage {stage!r}: {reason}")
        if key not in outcome.observations:
            raise Fail(f"the grader recorded no {key!r} in stage {stage!r}: {outcome.summary()}")
        return outcome.observations[key]


def command_label(argv: list[str]) -> str:
    """`python train.py` -> `train.py`; other commands as typed."""
    if len(argv) >= 2 and argv[0].startswith("python") and argv[1].endswith(".py"):
        return argv[1].rsplit("/", 1)[-1]
    return " ".join(argv)


def _seconds(value: float) -> str:
    return f"{value:g}"


def _memory(mb: int) -> str:
    return f"{mb // 1024:g} GiB" if mb % 1024 == 0 else f"{mb} MiB"


def show(value: Any, limit: int = 300) -> str:
    """A learner's value as compact JSON, cut to `limit` characters."""
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def predictions(value: Any, what: str) -> list[int]:
    if isinstance(value, str):
        raise Fail(value)
    if not isinstance(value, list) or not all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        raise Fail(f"{what} are not a list of integer class labels: {show(value)}")
    return value


def accuracy(predicted: list[int], labels: list[int]) -> float:
    if len(predicted) != len(labels):
        raise Fail(f"expected {len(labels)} predictions (one per holdout row), got {len(predicted)}")
    return sum(1 for p, y in zip(predicted, labels, strict=True) if p == y) / len(labels)


ACCURACY_BAND_WIDTH = 0.05


def accuracy_band(value: float) -> str:
    """The 0.05-wide band holding `value` ("0.90–0.95"), never the value itself: an
    exact hidden accuracy after every submission is an oracle (change one prediction,
    watch the figure move, learn that row's label)."""
    steps = round(1 / ACCURACY_BAND_WIDTH)
    low = min(math.floor(value * steps + 1e-9), steps - 1) / steps
    return f"{low:.2f}–{low + ACCURACY_BAND_WIDTH:.2f}"


def missing_file(outcome: StageOutcome, path: str) -> str:
    return outcome.file_errors.get(path) or FILE_MISSING.format(path=path, stage=outcome.spec.name)


def json_file(outcome: StageOutcome, path: str) -> Any:
    """A file read back after the stage, parsed as bounded JSON; Fail naming the
    file and the problem otherwise."""
    data = outcome.files.get(path)
    if data is None:
        raise Fail(missing_file(outcome, path))
    try:
        return load_json(data, name=path)
    except LearnerFileError as exc:
        raise Fail(str(exc)) from None


def number(document: Any, path: str, name: str) -> float:
    """A finite number under `name` in a JSON document; Fail otherwise."""
    if not isinstance(document, dict) or name not in document:
        raise Fail(f"{path} has no field {name!r}")
    value = document[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Fail(NOT_A_NUMBER.format(path=path, field=name, value=show(value)))
    try:
        result = float(value)  # an int past float's range overflows
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise Fail(NOT_A_NUMBER.format(path=path, field=name, value=show(value)))
    return result
