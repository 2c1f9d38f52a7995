"""GitHub Actions expressions (`${{ ... }}` and `if:`), evaluated without eval().

Used on the host (planning a workflow run: matrix, job `if:`) and by the CI probe in
the sandbox (step `if:`, `run:` and `env:` substitution with the steps' outcomes), so
it is stdlib only. The learner writes these expressions: a hand-written tokenizer and
recursive-descent parser with bounded length and depth, nothing executed.

Supported: literals (strings in single quotes, numbers, true, false, null), contexts
(`matrix`, `env`, `github`, `runner`, `job`, `steps`, `secrets`, `vars`, `inputs`)
with `.name` and `['name']` access, the operators `!`, `==`, `!=`, `<`, `<=`, `>`,
`>=`, `&&`, `||` and parentheses, and the functions success(), failure(), always(),
cancelled(), contains(), startsWith(), endsWith(), format(), join(), toJSON() and
fromJSON(). Anything else raises Unsupported naming it (hashFiles() needs files
GitHub hashes its own way; object filters `*` are not supported).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

MAX_EXPRESSION = 2000
MAX_DEPTH = 50
STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")
_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?))"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\],.*])|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)
_SUBSTITUTION = re.compile(r"\$\{\{(.*?)\}\}", re.S)


class Unsupported(Exception):
    """An expression the grader cannot evaluate as GitHub would; str() names it."""


class Context:
    """What an expression can see. `status` is the job's so far: success, failure or cancelled."""

    def __init__(self, values: dict[str, Any] | None = None, status: str = "success") -> None:
        self.values = values or {}
        self.status = status


def _tokens(text: str) -> list[tuple[str, str]]:
    if len(text) > MAX_EXPRESSION:
        raise Unsupported(f"an expression longer than {MAX_EXPRESSION} characters")
    found, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise Unsupported(f"expression syntax near {text[position : position + 20]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


def _truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0 and not math.isnan(value)
    if isinstance(value, str):
        return value != ""
    return True


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0.0
        try:
            return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
        except ValueError:
            return math.nan
    return math.nan


def _equal(a: Any, b: Any) -> bool:
    # GitHub: strings compare ignoring case; different types are compared as numbers.
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if type(a) is type(b) and not isinstance(a, str | int | float | bool) and a is not None:
        return a is b
    return _number(a) == _number(b)


def _compare(a: Any, b: Any, op: str) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        x: Any = a.casefold()
        y: Any = b.casefold()
    else:
        x, y = _number(a), _number(b)
        if math.isnan(x) or math.isnan(y):
            return False
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


def to_string(value: Any) -> str:
    """How GitHub turns a value into text in `${{ }}` substitution."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2)
    return str(value)


class _Parser:
    def __init__(self, text: str, context: Context) -> None:
        self.tokens = _tokens(text)
        self.position = 0
        self.context = context
        self.depth = 0
        self.functions: dict[str, Callable[..., Any]] = {
            "success": lambda: context.status == "success",
            "failure": lambda: context.status == "failure",
            "always": lambda: True,
            "cancelled": lambda: context.status == "cancelled",
            "contains": self._contains,
            "startswith": lambda a, b: to_string(a).casefold().startswith(to_string(b).casefold()),
            "endswith": lambda a, b: to_string(a).casefold().endswith(to_string(b).casefold()),
            "format": self._format,
            "join": lambda a, sep=",": to_string(sep).join(map(to_string, a)) if isinstance(a, list) else to_string(a),
            "tojson": lambda a: json.dumps(a, indent=2),
            "fromjson": self._from_json,
        }

    @staticmethod
    def _contains(haystack: Any, needle: Any) -> bool:
        if isinstance(haystack, list):
            return any(_equal(item, needle) for item in haystack)
        return to_string(needle).casefold() in to_string(haystack).casefold()

    @staticmethod
    def _format(template: Any, *args: Any) -> str:
        text = to_string(template)

        def replace(match: re.Match) -> str:
            if match.group(0) in ("{{", "}}"):
                return match.group(0)[0]
            index = int(match.group(1))
            if index >= len(args):
                raise Unsupported(f"format() with no argument {index}")
            return to_string(args[index])

        return re.sub(r"\{\{|\}\}|\{(\d+)\}", replace, text)

    @staticmethod
    def _from_json(text: Any) -> Any:
        try:
            return json.loads(to_string(text))
        except ValueError:
            raise Unsupported("fromJSON() of text that is not JSON") from None

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise Unsupported(f"expression syntax: expected {value or 'more'}")
        self.position += 1
        return token

    def parse(self) -> Any:
        if not self.tokens:
            raise Unsupported("an empty expression")
        value = self.or_()
        if self.peek() is not None:
            raise Unsupported(f"expression syntax near {self.peek()[1]!r}")  # type: ignore[index]
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()
            value = value if _truthy(value) else right
        return value

    def and_(self) -> Any:
        value = self.equality()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.equality()
            value = right if _truthy(value) else value
        return value

    def equality(self) -> Any:
        value = self.comparison()
        while self.peek() in (("op", "=="), ("op", "!=")):
            op = self.take()[1]
            right = self.comparison()
            value = _equal(value, right) if op == "==" else not _equal(value, right)
        return value

    def comparison(self) -> Any:
        value = self.unary()
        while self.peek() in (("op", "<"), ("op", "<="), ("op", ">"), ("op", ">=")):
            op = self.take()[1]
            value = _compare(value, self.unary(), op)
        return value

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not _truthy(self.unary())
        return self.postfix()

    def postfix(self) -> Any:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Unsupported("an expression nested too deeply")
        try:
            value = self.primary()
            while self.peek() in (("op", "."), ("op", "[")):
                if self.take()[1] == ".":
                    kind, name = self.take()
                    if kind == "op" and name == "*":
                        raise Unsupported("object filters (`.*`)")
                    if kind != "name":
                        raise Unsupported(f"expression syntax near {name!r}")
                    value = _member(value, name)
                else:
                    key = self.or_()
                    self.take("]")
                    value = _member(value, key)
            return value
        finally:
            self.depth -= 1

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "number":
            return float(int(text, 16)) if "x" in text.lower() else float(text)
        if kind == "op" and text == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind == "name":
            lowered = text.lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            if lowered == "null":
                return None
            if self.peek() == ("op", "("):
                return self.call(lowered, text)
            if lowered in self.context.values:
                return self.context.values[lowered]
            raise Unsupported(f"the context `{text}`")
        raise Unsupported(f"expression syntax near {text!r}")

    def call(self, lowered: str, name: str) -> Any:
        self.take("(")
        args = []
        if self.peek() != ("op", ")"):
            args.append(self.or_())
            while self.peek() == ("op", ","):
                self.take()
                args.append(self.or_())
        self.take(")")
        function = self.functions.get(lowered)
        if function is None:
            raise Unsupported(f"the function {name}()")
        try:
            return function(*args)
        except TypeError:
            raise Unsupported(f"{name}() with {len(args)} argument(s)") from None


def _member(value: Any, key: Any) -> Any:
    if isinstance(value, dict):
        wanted = to_string(key).casefold()
        for name, item in value.items():
            if str(name).casefold() == wanted:
                return item
        return None
    if isinstance(value, list) and not isinstance(key, bool) and isinstance(key, int | float):
        index = int(key)
        return value[index] if 0 <= index < len(value) else None
    return None


def evaluate(text: str, context: Context) -> Any:
    """The value of one expression (without the `${{ }}`)."""
    return _Parser(text, context).parse()


def substitute(text: str, context: Context) -> str:
    """`text` with every `${{ expr }}` replaced by its value as text."""
    return _SUBSTITUTION.sub(lambda m: to_string(evaluate(m.group(1), context)), text)


def condition(value: Any, context: Context) -> bool:
    """Whether a step or job with this `if:` runs. Without a status function
    (success(), failure(), always(), cancelled()) GitHub adds `success() &&`."""
    if value is None:
        return context.status == "success"
    if isinstance(value, bool):
        return value and context.status == "success"
    if isinstance(value, int | float):
        return _truthy(value) and context.status == "success"
    text = str(value).strip()
    whole = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.S)
    if whole and "${{" not in whole.group(1):
        text = whole.group(1)
    elif "${{" in text:
        # `if: ${{ a }} && b` is a string in YAML: GitHub substitutes and then tests
        # the text, which is always non-empty (so true). Say so rather than guess.
        raise Unsupported(f"an `if:` mixing ${{{{ }}}} with other text ({text[:60]!r})")
    uses_status = any(
        token == ("name", name) or (token[0] == "name" and token[1].lower() == name)
        for token in _tokens(text)
        for name in STATUS_FUNCTIONS
    )
    result = _truthy(evaluate(text, context))
    if uses_status:
        return result
    return context.status == "success" and result
