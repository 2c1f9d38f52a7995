"""Judges of how the learner's own stages ended and the files they left behind."""

from __future__ import annotations

from labs.lab_spec import ExitCodeCheck, FilesCheck, ReportedMetricCheck

from .base import Evidence, Fail, accuracy, accuracy_band, json_file, number, predictions


def judge_exit_code(check: ExitCodeCheck, evidence: Evidence) -> str:
    outcome = evidence.stage(check.stage)
    if not outcome.succeeded:
        raise Fail(outcome.summary())
    return outcome.summary()


def judge_files(check: FilesCheck, evidence: Evidence) -> str:
    outcome = evidence.stage(check.stage)
    problems = []
    for path in check.paths:
        if outcome.files.get(path) is None:
            problems.append(
                outcome.file_errors.get(path)
                or f"{path} was not found after {outcome.label} (or is not a regular file)"
            )
            continue
        if path in check.json_:
            try:
                document = json_file(outcome, path)
                for name in check.numbers.get(path, []):
                    number(document, path, name)
            except Fail as exc:
                problems.append(str(exc))
    if problems:
        raise Fail("\n".join(problems))
    return f"found {', '.join(check.paths)}"


def judge_reported_metric(check: ReportedMetricCheck, evidence: Evidence) -> str:
    outcome = evidence.stage(check.stage)
    predicted = predictions(evidence.observation(check.stage, check.key), "the predictions")
    holdout = accuracy(predicted, evidence.labels[check.labels])
    if check.reported is not None:
        stage, key = check.reported.split(":", 1)
        value = evidence.observation(stage, key)
        if isinstance(value, str) and value:
            raise Fail(value)
        reported = number({key: value}, "the recorded value", key)
        where = f"you recorded {key} {reported:.4f}"
    else:
        assert check.file is not None and check.field is not None  # the spec requires one claim
        reported = number(json_file(outcome, check.file), check.file, check.field)
        where = f"{check.file} reports {check.field} {reported:.4f}"
    gap = abs(reported - holdout)
    # The band and a verdict, never the gap: reported - gap would be the exact accuracy.
    feedback = f"{where}; the holdout gives {accuracy_band(holdout)}"
    if gap > check.tolerance:
        raise Fail(f"{feedback}: more than {check.tolerance:g} apart")
    return f"{feedback}: within {check.tolerance:g}"
