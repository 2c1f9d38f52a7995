"""Reading bytes that learner code wrote or could influence: one place, one set of limits.

Anything a submission can shape (a `metrics.json`, an audit log, a JUnit or coverage
report, an HTTP response, the observations a probe recorded from them) is hostile
input. The standard `json` module is not a safe parser for it on its own: 100,000
nested brackets raise RecursionError (not ValueError, so callers that catch only
ValueError crash), `NaN`/`Infinity`/`1e999` load as non-finite floats, an integer of
a million digits loads (or raises ValueError only past the interpreter's digit limit)
and then overflows in `float()`, and bytes are decoded with a guessed encoding.

`load_json` rejects all of that with a `LearnerFileError` whose message names the
file and the problem; callers turn it into a failed check. Stdlib only, and valid on
Python 3.11: the platform probes import this module inside the lab image too (the
runner copies it beside them), so host and sandbox parse with the same rules.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from typing import Any

# Far deeper than any metrics file, report or API answer needs, far below the
# interpreter's recursion limit, so nothing downstream (comparisons, json.dumps, the
# database's JSON encoder) can recurse out of stack on what we accepted.
MAX_JSON_DEPTH = 200
# Enough for any genuine value (a 64-bit integer has 20 digits); an integer this long
# still converts to a finite float.
MAX_INT_DIGITS = 100
MAX_JSON_BYTES = 20 * 1024 * 1024

NOT_UTF8 = "{name} is not valid UTF-8 text (byte {offset} is 0x{byte:02x})"
TOO_LARGE = "{name} is {size} bytes, more than the {limit}-byte limit"
TOO_DEEP = "{name} nests arrays or objects more than {limit} levels deep"
NOT_JSON = "{name} is not valid JSON: {problem}"
NOT_FINITE = "{name} contains {value}, which is not a finite number (JSON has no NaN or Infinity)"
TOO_MANY_DIGITS = "{name} contains an integer of {digits} digits (at most {limit} are accepted)"
NOT_REGULAR = "{name} is {kind}, not a regular file"
BINARY = "{name} is binary (it contains NUL bytes), not text"


class LearnerFileError(ValueError):
    """Learner bytes that cannot be accepted; str(exc) is the learner-facing message."""


class _Rejected(Exception):
    """Raised from json's parse hooks; carries a message with a {name} field."""


# A JSON string, unrolled so that matching is linear (no nested quantifier can backtrack).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when arrays/objects nest deeper than `limit` (brackets inside strings
    do not count). Exact for valid JSON; for invalid JSON it may err either way,
    and json.loads then reports the syntax error (or RecursionError, also handled)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def read_regular_file(path: str | os.PathLike, *, name: str, max_bytes: int) -> bytes:
    """The bytes of a regular file, never blocking and never following a link.

    Raises FileNotFoundError when nothing is there, LearnerFileError when it is a
    link, a FIFO (opening one for reading would wait forever for a writer), a
    directory or a device, or larger than `max_bytes` (a sparse file can claim
    gigabytes for free).
    """
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise LearnerFileError(NOT_REGULAR.format(name=name, kind=_kind(info.st_mode)))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        # Swapped for a link (ELOOP) or something unreadable after the lstat.
        raise LearnerFileError(NOT_REGULAR.format(name=name, kind="something that changed as it was opened")) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise LearnerFileError(NOT_REGULAR.format(name=name, kind=_kind(info.st_mode)))
        if info.st_size > max_bytes:
            raise LearnerFileError(TOO_LARGE.format(name=name, size=info.st_size, limit=max_bytes))
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew while we read
        raise LearnerFileError(TOO_LARGE.format(name=name, size=len(data), limit=max_bytes))
    return data


def read_text_file(path: str | os.PathLike, *, name: str, max_bytes: int) -> str:
    """A regular file as strict UTF-8 text (no NUL bytes); errors as read_regular_file."""
    data = read_regular_file(path, name=name, max_bytes=max_bytes)
    if b"\0" in data:
        raise LearnerFileError(BINARY.format(name=name))
    return decode_utf8(data, name=name)


def decode_utf8(data: bytes, *, name: str) -> str:
    """Strict UTF-8 (a leading byte-order mark is allowed and dropped)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LearnerFileError(NOT_UTF8.format(name=name, offset=exc.start, byte=data[exc.start])) from None


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _Rejected(TOO_MANY_DIGITS.format(name="{name}", digits=digits, limit=MAX_INT_DIGITS))
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise _Rejected(NOT_FINITE.format(name="{name}", value=shown))
    return value


def _parse_constant(text: str) -> float:
    raise _Rejected(NOT_FINITE.format(name="{name}", value=text))


def _nonfinite_constant(text: str) -> float:
    return float(text.replace("Infinity", "inf"))


def load_json(
    data: bytes | str,
    *,
    name: str,
    max_bytes: int = MAX_JSON_BYTES,
    allow_non_finite: bool = False,
) -> Any:
    """Parse learner JSON, or raise LearnerFileError naming `name` and the problem.

    `allow_non_finite` keeps NaN and ±Infinity (as floats) for documents that only
    relay what a learner's program sent, such as a probe's record of an HTTP answer,
    where the judges compare values and a NaN simply does not match.
    """
    size = len(data)
    if size > max_bytes:
        raise LearnerFileError(TOO_LARGE.format(name=name, size=size, limit=max_bytes))
    text = decode_utf8(data, name=name) if isinstance(data, bytes | bytearray) else data
    if json_depth_exceeds(text):
        raise LearnerFileError(TOO_DEEP.format(name=name, limit=MAX_JSON_DEPTH))
    try:
        if allow_non_finite:
            return json.loads(text, parse_int=_parse_int, parse_constant=_nonfinite_constant)
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except _Rejected as exc:
        raise LearnerFileError(str(exc).format(name=name)) from None
    except json.JSONDecodeError as exc:
        raise LearnerFileError(NOT_JSON.format(name=name, problem=exc)) from None
    except RecursionError:
        # Only reachable for invalid JSON that the depth scan miscounted.
        raise LearnerFileError(TOO_DEEP.format(name=name, limit=MAX_JSON_DEPTH)) from None
    except ValueError as exc:
        # The interpreter's own integer-digit limit and similar conversions.
        raise LearnerFileError(NOT_JSON.format(name=name, problem=exc)) from None
