"""Similar submissions of a lab, for the instructor to review (never a verdict).

Two signals:
- *Identical snapshots*: the same snapshot content hash (SHA-256) submitted by
  different learners. Exact, from the database alone.
- *Near-identical source files*: copydetect (pygments tokenisation, identifiers and
  literals normalised, winnowed k-gram fingerprints; Stanford MOSS's method) over
  each learner's latest submission. The lab's starter files are fingerprinted too
  and their fingerprints are removed from every file as boilerplate, so code that
  everyone was given does not make learners look alike.

Computed on demand and cached (the cache key names the lab's content hash and every
compared snapshot, so a new submission or a changed starter computes afresh; each
file's fingerprints are cached by its content, so only new files are tokenised). A lab
with up to SYNC_LIMIT learners is computed in the request; a larger one by the
`grading.lab_similarity` task on the low queue while the page says so. Candidate pairs
come from an inverted index of fingerprints, so only files that share fingerprints are
compared in full.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import combinations
from pathlib import PurePosixPath
from typing import Any

from django.core.cache import cache

from labs.models import Lab

from . import storage
from .models import Submission

log = logging.getLogger(__name__)

# copydetect's defaults: matches shorter than NOISE characters of normalised code are
# ignored, matches of GUARANTEE characters or more are always found.
NOISE = 25
GUARANTEE = 30
WINDOW = GUARANTEE - NOISE + 1
# Pairs at or above this are shown by default; the page can lower it to FLOOR.
DEFAULT_THRESHOLD = 0.8
FLOOR = 0.5
# Files with fewer fingerprinted characters than this (after removing the starter's)
# say too little to compare: an `__init__.py`, a two-line config.
MIN_COVERAGE = 60
MAX_FILE_BYTES = 256 * 1024
SOURCE_SUFFIXES = {".py", ".ipynb", ".sh", ".yml", ".yaml", ".toml", ".cfg"}
SOURCE_NAMES = {"Dockerfile", "Makefile"}
CACHE_S = 24 * 3600
# Learners compared in the request; past this the low queue computes (tokenising takes
# about 10-50 ms per file on a busy 2-core machine).
SYNC_LIMIT = 30
# A fingerprint held by more files than this (or a quarter of the learners, if more)
# is left out of candidate generation.
UBIQUITOUS_MIN = 8

FILE_NOT_FOUND = "That file is not in the submission's snapshot (or the snapshot is no longer kept)."


@dataclass(frozen=True)
class SourceFile:
    submission_id: str
    user_id: int
    path: str
    text: str


def _is_source(path: str) -> bool:
    p = PurePosixPath(path)
    return p.suffix in SOURCE_SUFFIXES or p.name in SOURCE_NAMES


def _lexer_name(path: str) -> str:
    """The name copydetect picks its pygments lexer by: a notebook's code is Python."""
    return path + ".py" if path.endswith(".ipynb") else path


def _decode(path: str, data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    text = data.decode("utf-8", errors="replace")
    if path.endswith(".ipynb"):
        try:
            notebook = json.loads(text)
            cells = notebook.get("cells", []) if isinstance(notebook, dict) else []
            code = []
            for cell in cells:
                if isinstance(cell, dict) and cell.get("cell_type") == "code":
                    source = cell.get("source", "")
                    code.append("".join(source) if isinstance(source, list) else str(source))
            return "\n\n".join(code)
        except (ValueError, RecursionError):
            return None
    return text


def snapshot_sources(submission: Submission) -> dict[str, str]:
    """The source files of a submission's snapshot, by path (regular files of a
    known source kind, at most MAX_FILE_BYTES each); empty when the snapshot is gone."""
    if not submission.snapshot_path or not submission.snapshot_sha256:
        return {}
    files: dict[str, str] = {}
    try:
        with storage.fetched(submission.snapshot_path, submission.snapshot_sha256) as path:
            with tarfile.open(path, mode="r:gz") as tar:
                for member in tar:
                    if not member.isreg() or member.size > MAX_FILE_BYTES or not _is_source(member.name):
                        continue
                    handle = tar.extractfile(member)
                    if handle is None:
                        continue
                    text = _decode(member.name, handle.read())
                    if text is not None:
                        files[member.name] = text
    except (storage.StoreError, tarfile.TarError, OSError) as exc:
        log.warning("similarity: snapshot of %s not readable: %s", submission.pk, exc)
        return {}
    return files


def starter_sources(lab: Lab) -> dict[str, str]:
    """The lab's starter files (paths without the archive's top folder)."""
    data = Lab.objects.filter(pk=lab.pk).values_list("starter_zip", flat=True).first()
    if not data:
        return {}
    files: dict[str, str] = {}
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        for info in archive.infolist():
            name = "/".join(PurePosixPath(info.filename).parts[1:])
            if info.is_dir() or info.file_size > MAX_FILE_BYTES or not _is_source(name):
                continue
            text = _decode(name, archive.read(info))
            if text is not None:
                files[name] = text
    return files


def fingerprint(path: str, text: str, boilerplate: list[int] | None = None):
    from copydetect import CodeFingerprint  # imports matplotlib: only when needed

    return CodeFingerprint(_lexer_name(path), NOISE, WINDOW, boilerplate=boilerplate or [], fp=io.StringIO(text))


@dataclass(frozen=True)
class _Print:
    hashes: frozenset[int]
    coverage: int


def _prints(sources: list[SourceFile], boilerplate: list[int]) -> list[_Print]:
    """Each file's fingerprints, cached by its content (and the boilerplate removed):
    tokenising is most of the work, and a file seen once is not tokenised again when
    other learners submit."""
    salt = hashlib.sha256(repr(boilerplate).encode()).hexdigest()[:16]
    keys = [
        f"similarity:print:v1:{salt}:{hashlib.sha256((s.path + chr(0) + s.text).encode()).hexdigest()}" for s in sources
    ]
    cached = cache.get_many(keys)
    fresh = {}
    out = []
    for key, source in zip(keys, sources, strict=True):
        if key in cached:
            hashes, coverage = cached[key]
        else:
            print_ = fingerprint(source.path, source.text, boilerplate)
            hashes, coverage = sorted(int(h) for h in print_.hashes), int(print_.token_coverage)
            fresh[key] = (hashes, coverage)
        out.append(_Print(frozenset(hashes), coverage))
    if fresh:
        cache.set_many(fresh, CACHE_S * 7)
    return out


def boilerplate_hashes(lab: Lab) -> list[int]:
    hashes: set[int] = set()
    for path, text in starter_sources(lab).items():
        hashes |= set(fingerprint(path, text).hashes)
    return sorted(hashes)


def compared_submissions(lab: Lab) -> list[Submission]:
    """Each learner's latest finished submission whose snapshot is still kept."""
    from courses.models import CourseStaff

    staff = CourseStaff.objects.filter(course=lab.course).values("user_id")
    latest: dict[int, Submission] = {}
    candidates = (
        Submission.objects.filter(lab=lab, status__in=[Submission.Status.PASSED, Submission.Status.FAILED])
        .exclude(snapshot_path="")
        .exclude(user_id__in=staff)
        .select_related("user")
        .order_by("-created_at")
    )
    for submission in candidates:
        latest.setdefault(submission.user_id, submission)
    return sorted(latest.values(), key=lambda s: s.created_at)


def identical_snapshots(lab: Lab) -> list[list[Submission]]:
    """Groups of submissions of different learners with the same snapshot hash,
    largest group first (within a group, oldest first: who submitted it first)."""
    from courses.models import CourseStaff

    staff = CourseStaff.objects.filter(course=lab.course).values("user_id")
    rows = (
        Submission.objects.filter(lab=lab)
        .exclude(snapshot_sha256="")
        .exclude(user_id__in=staff)
        .select_related("user")
        .order_by("created_at")
    )
    by_hash: dict[str, list[Submission]] = defaultdict(list)
    for submission in rows:
        by_hash[submission.snapshot_sha256].append(submission)
    groups = []
    for submissions in by_hash.values():
        first_per_learner: dict[int, Submission] = {}
        for submission in submissions:
            first_per_learner.setdefault(submission.user_id, submission)
        if len(first_per_learner) > 1:
            groups.append(list(first_per_learner.values()))
    return sorted(groups, key=lambda g: (-len(g), g[0].created_at))


@dataclass(frozen=True)
class SimilarPair:
    a: str  # submission id
    a_path: str
    b: str
    b_path: str
    similarity_a: float  # share of a's fingerprinted code also in b
    similarity_b: float
    overlap: int  # matching characters of normalised code

    @property
    def similarity(self) -> float:
        return max(self.similarity_a, self.similarity_b)


def _cache_key(lab: Lab, submissions: list[Submission]) -> str:
    digest = hashlib.sha256(lab.content_hash.encode())
    for submission in submissions:
        digest.update(f"{submission.pk}:{submission.snapshot_sha256};".encode())
    return f"similarity:v1:{lab.pk}:{digest.hexdigest()}"


def cached_pairs(lab: Lab, submissions: list[Submission]) -> list[SimilarPair] | None:
    """The pairs if they are computed for exactly these submissions, else None."""
    cached = cache.get(_cache_key(lab, submissions))
    return None if cached is None else [SimilarPair(**pair) for pair in cached]


def similar_pairs(lab: Lab, submissions: list[Submission] | None = None) -> list[SimilarPair]:
    """Pairs of source files of different learners at or above FLOOR, most similar
    first. Cached per lab content and set of snapshots compared; reads only."""
    submissions = compared_submissions(lab) if submissions is None else submissions
    key = _cache_key(lab, submissions)
    cached = cache.get(key)
    if cached is not None:
        return [SimilarPair(**pair) for pair in cached]
    pairs = _compute_pairs(lab, submissions)
    cache.set(key, [pair.__dict__ for pair in pairs], CACHE_S)
    return pairs


def _compute_pairs(lab: Lab, submissions: list[Submission]) -> list[SimilarPair]:
    sources = [
        SourceFile(str(submission.pk), submission.user_id, path, text)
        for submission in submissions
        for path, text in sorted(snapshot_sources(submission).items())
    ]
    return pairs_among(sources, boilerplate_hashes(lab))


def pairs_among(sources: list[SourceFile], boilerplate: list[int]) -> list[SimilarPair]:
    """Pairs of `sources` of different learners at or above FLOOR, most similar first."""
    from copydetect import compare_files

    files: list[SourceFile] = []
    prints: list[_Print] = []
    for source, print_ in zip(sources, _prints(sources, boilerplate), strict=True):
        if print_.coverage < MIN_COVERAGE or not print_.hashes:
            continue
        files.append(source)
        prints.append(print_)
    # Candidates: files of different learners that share fingerprints, with a count
    # of how many. A fingerprint found in many learners' files is an idiom of the
    # task, not a sign of copying, and would make every file a candidate of every
    # other: it is left out of candidate generation (not of the comparison).
    index: dict[int, list[int]] = defaultdict(list)
    for i, print_ in enumerate(prints):
        for h in print_.hashes:
            index[h].append(i)
    ubiquitous = max(UBIQUITOUS_MIN, len({f.user_id for f in files}) // 4)
    shared: Counter[tuple[int, int]] = Counter()
    for holders in index.values():
        if len(holders) > ubiquitous:
            continue
        for i, j in combinations(holders, 2):
            if files[i].user_id != files[j].user_id:
                shared[(i, j)] += 1
    fulls: dict[int, Any] = {}

    def full(i: int):
        if i not in fulls:
            fulls[i] = fingerprint(files[i].path, files[i].text, boilerplate)
        return fulls[i]

    pairs = []
    for (i, j), count in shared.items():
        # A cheap bound first: the share of the smaller file's fingerprints in common.
        if count / min(len(prints[i].hashes), len(prints[j].hashes)) < FLOOR / 2:
            continue
        overlap, (sim_a, sim_b), _ = compare_files(full(i), full(j))
        if max(sim_a, sim_b) >= FLOOR:
            pairs.append(
                SimilarPair(
                    a=files[i].submission_id,
                    a_path=files[i].path,
                    b=files[j].submission_id,
                    b_path=files[j].path,
                    similarity_a=round(float(sim_a), 4),
                    similarity_b=round(float(sim_b), 4),
                    overlap=int(overlap),
                )
            )
    pairs.sort(key=lambda p: (-p.similarity, -p.overlap, p.a, p.a_path))
    return pairs


@dataclass(frozen=True)
class Segment:
    text: str
    copied: bool


def _segments(text: str, slices) -> list[Segment]:
    """`text` cut into runs, marking the character ranges copydetect matched."""
    out: list[Segment] = []
    position = 0
    if len(slices) == 2 and len(slices[0]):
        for start, end in sorted(zip(slices[0].tolist(), slices[1].tolist(), strict=True)):
            start, end = max(start, position), min(end, len(text))
            if start >= end:
                continue
            if start > position:
                out.append(Segment(text[position:start], False))
            out.append(Segment(text[start:end], True))
            position = end
    if position < len(text):
        out.append(Segment(text[position:], False))
    return out


def side_by_side(
    lab: Lab, a: Submission, a_path: str, b: Submission, b_path: str
) -> tuple[list[Segment], list[Segment], float, float]:
    """The two files with their matching code marked, and each one's similarity.
    Raises KeyError(FILE_NOT_FOUND) when either file is not in its snapshot."""
    from copydetect import compare_files

    text_a = snapshot_sources(a).get(a_path)
    text_b = snapshot_sources(b).get(b_path)
    if text_a is None or text_b is None:
        raise KeyError(FILE_NOT_FOUND)
    boilerplate = boilerplate_hashes(lab)
    _, (sim_a, sim_b), (slices_a, slices_b) = compare_files(
        fingerprint(a_path, text_a, boilerplate), fingerprint(b_path, text_b, boilerplate)
    )
    return _segments(text_a, slices_a), _segments(text_b, slices_b), float(sim_a), float(sim_b)


def _computing_key(lab: Lab) -> str:
    return f"similarity:computing:{lab.pk}"


def computing_start(lab: Lab) -> bool:
    """Mark the lab's pairs as being computed; False when they already are (so one
    page load sends one task, not one per refresh)."""
    return bool(cache.add(_computing_key(lab), True, 15 * 60))


def computing_done(lab: Lab) -> None:
    cache.delete(_computing_key(lab))
