"""The instrument-service lab's traffic driver (`service.driver` in lab.yaml).

The platform's service probe has started the learner's server as uid 1000 and seen
GET /health answer; it then calls drive(client) here, in its own process, as the
grader. This sends a traffic pattern made up afresh on every run (so no service can
hard-code its counts): valid predictions of one and of several rows, malformed bodies
(422), GET /predict (405), GET /model, and unknown paths carrying random tokens
(404). Then it scrapes GET /metrics once, parses it with prometheus_client's own
parser, and compares it with what the grader itself sent and was answered.

Returns one observation per check: True, or a sentence saying what is wrong.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import time
from collections import Counter
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

MODEL = Path("/grader/data/model.json")  # the grader's copy of the model it serves
KNOWN_ROUTES = ("/predict", "/model")
UNMEASURED = ("/health", "/metrics")  # the learner may count these or not
REQUEST_TIMEOUT_S = 5.0
TRAFFIC_BUDGET_S = 45.0
MAX_BODY_BYTES = 2_000_000
MAX_ROUTE_VALUES = 10
MAX_SAMPLES = 5000
LATENCY_THRESHOLD_S = 0.25  # HighLatencyP95's threshold: a bucket must sit on it
MIN_FINITE_BUCKETS = 5
MAX_SMALLEST_BUCKET_S = 0.025
MIN_LARGEST_BUCKET_S = 1.0
SHOWN = 5  # differences listed in one message

KEYS = (
    "answers",
    "metrics_parse",
    "requests_counted",
    "latency_histogram",
    "predictions_counted",
    "model_info",
    "bounded_labels",
)
# Class centres and spreads of the iris data set: rows drawn around them.
CENTRES = ((5.01, 3.43, 1.46, 0.25), (5.94, 2.77, 4.26, 1.33), (6.59, 2.97, 5.55, 2.03))
SPREADS = ((0.35, 0.38, 0.17, 0.1), (0.51, 0.31, 0.47, 0.2), (0.63, 0.32, 0.55, 0.27))
MALFORMED = (
    {"json": {"rows": [[5.1, 3.5, 1.4]]}},
    {"json": {"rows": [[5.1, 3.5, 1.4, 0.2, 1.0]]}},
    {"json": {"rows": []}},
    {"json": {"rows": [["5.1", "wide", "1.4", "0.2"]]}},
    {"json": {"rows": [[5.1, 3.5, None, 0.2]]}},
    {"json": {"features": [[5.1, 3.5, 1.4, 0.2]]}},
    {"json": {}},
    {"body": "this is not JSON"},
    {"body": '{"rows": [[5.1, 3.5, 1.4, 0.2]'},
)


class Model:
    """The classifier as the grader computes it: the same arithmetic as the starter's."""

    def __init__(self, spec: dict) -> None:
        self.version = spec["version"]
        self.classes = spec["classes"]
        self.coef = spec["coef"]
        self.intercept = spec["intercept"]

    def scores(self, row: list[float]) -> list[float]:
        return [
            sum(w * x for w, x in zip(ws, row, strict=True)) + b
            for ws, b in zip(self.coef, self.intercept, strict=True)
        ]

    def predict(self, row: list[float]) -> str:
        scores = self.scores(row)
        return self.classes[max(range(len(scores)), key=scores.__getitem__)]


def make_row(rng: random.Random, model: Model) -> list[float]:
    """A plausible row whose class is clear (the top two scores 0.05 apart), so no
    rounding in the learner's arithmetic can flip it."""
    while True:
        centre = rng.randrange(len(CENTRES))
        row = [round(max(0.1, rng.gauss(m, s)), 2) for m, s in zip(CENTRES[centre], SPREADS[centre], strict=True)]
        top, second = sorted(model.scores(row), reverse=True)[:2]
        if top - second >= 0.05:
            return row


def make_traffic(rng: random.Random, model: Model) -> tuple[list[dict], set[str]]:
    """The requests, shuffled: each with the route it should be counted under
    (None for an unknown path) and, for a valid prediction, the classes expected."""
    traffic: list[dict] = []
    for _ in range(rng.randint(12, 28)):
        rows = [make_row(rng, model)]
        traffic.append({"method": "POST", "path": "/predict", "route": "/predict", "json": {"rows": rows}})
    for _ in range(rng.randint(4, 9)):
        rows = [make_row(rng, model) for _ in range(rng.randint(2, 6))]
        traffic.append({"method": "POST", "path": "/predict", "route": "/predict", "json": {"rows": rows}})
    for _ in range(rng.randint(5, 12)):
        traffic.append(
            {"method": "POST", "path": "/predict", "route": "/predict", "malformed": True, **rng.choice(MALFORMED)}
        )
    for _ in range(rng.randint(2, 6)):
        traffic.append({"method": "GET", "path": "/model", "route": "/model"})
    for _ in range(rng.randint(1, 4)):
        traffic.append({"method": "GET", "path": "/predict", "route": "/predict", "wrong_method": True})
    tokens = set()
    for _ in range(rng.randint(5, 12)):
        token = secrets.token_hex(5)
        tokens.add(token)
        path = rng.choice(("/{t}", "/predict/{t}", "/api/v1/{t}", "/{t}/metrics")).format(t=token)
        traffic.append({"method": rng.choice(("GET", "POST")), "path": path, "route": None})
    rng.shuffle(traffic)
    for item in traffic:
        if "json" in item and not item.get("malformed"):
            item["expected"] = [model.predict(row) for row in item["json"]["rows"]]
    return traffic, tokens


def request(client: httpx.Client, method: str, path: str, content: bytes | None = None) -> tuple[int, bytes]:
    """(status, body): the body is the learner's, read up to MAX_BODY_BYTES (more is an
    error) so a server streaming without end cannot exhaust the probe's memory.
    Raises httpx.HTTPError (no answer) or ValueError (too long)."""
    headers = {"content-type": "application/json"} if content is not None else {}
    with client.stream(method, path, content=content, headers=headers, timeout=REQUEST_TIMEOUT_S) as response:
        body = b""
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise ValueError(f"{method} {path} answered more than {MAX_BODY_BYTES:,} bytes")
        return response.status_code, body


def send(client: httpx.Client, item: dict) -> None:
    """Sends one request; records the status (None if there was no answer) and the
    predictions of a 200 from /predict."""
    if "json" in item:
        content = json.dumps(item["json"]).encode()
    elif "body" in item:
        content = item["body"].encode()
    else:
        content = None
    item["status"] = None
    try:
        item["status"], body = request(client, item["method"], item["path"], content)
    except (httpx.HTTPError, ValueError) as exc:
        item["error"] = type(exc).__name__
        return
    if "expected" in item and item["status"] == 200:
        try:
            item["answer"] = json.loads(body).get("predictions")
        except (ValueError, AttributeError, RecursionError):
            item["answer"] = None


def scrape(client: httpx.Client) -> str:
    """The /metrics page as text; ValueError says why there is none."""
    try:
        status, body = request(client, "GET", "/metrics")
    except httpx.HTTPError as exc:
        raise ValueError(f"GET /metrics got no answer ({type(exc).__name__})") from None
    if status != 200:
        hint = (
            ' (serve it from a route, @app.get("/metrics"): app.mount redirects to /metrics/)'
            if 300 <= status < 400
            else ""
        )
        raise ValueError(f"GET /metrics answered {status}, not 200 with the metrics{hint}")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("GET /metrics is not UTF-8 text") from None


def parse(text: str) -> dict[str, list[tuple[str, dict, float]]]:
    """Samples by family name (prometheus_client drops a counter's `_total`), each
    family's type under `<name>:type`. ValueError names what does not parse."""
    families: dict = {}
    count = 0
    try:
        for family in text_string_to_metric_families(text):
            families[f"{family.name}:type"] = family.type
            samples = families.setdefault(family.name, [])
            for sample in family.samples:
                count += 1
                if count > MAX_SAMPLES:
                    raise ValueError(f"more than {MAX_SAMPLES:,} samples")
                samples.append((sample.name, dict(sample.labels), float(sample.value)))
    except ValueError as exc:
        raise ValueError(f"/metrics is not valid Prometheus text: {str(exc)[:200]}") from None
    except Exception as exc:  # the parser raises others on some inputs (IndexError, TypeError)
        raise ValueError(f"/metrics is not valid Prometheus text ({type(exc).__name__})") from None
    return families


def series(families: dict, family: str, suffix: str, kind: str, labels: tuple[str, ...]) -> list[tuple[dict, float]]:
    """The samples `family + suffix`, checking the family's type and label names."""
    if family not in families:
        if family + suffix in families:
            raise Problem(f"{family}{suffix} is not declared a {kind} (# TYPE)")
        raise Problem(f"no metric {family}{suffix} on /metrics")
    if families[f"{family}:type"] != kind:
        raise Problem(f"{family}{suffix} is a {families[f'{family}:type']}, not a {kind} (declare it with # TYPE)")
    found = [(labels_, value) for name, labels_, value in families[family] if name == family + suffix]
    for labels_, _ in found:
        missing = [name for name in labels if name not in labels_]
        if missing:
            raise Problem(f"{family}{suffix} has a series without the label(s) {', '.join(missing)}")
    return found


class Problem(Exception):
    pass


def show(key: dict) -> str:
    """Labels as PromQL writes them, each value cut short (the server chose them)."""
    return "{" + ", ".join(f'{k[:40]}="{v[:80]}"' for k, v in key.items()) + "}"


def compare(observed: Counter, expected: Counter, what: str, source: str = "the grader sent") -> None:
    """Counts that differ, as at most SHOWN sentences."""
    differ = sorted(k for k in set(observed) | set(expected) if observed.get(k, 0) != expected.get(k, 0))
    if differ:
        lines = [
            f"{what}{show(dict(k))}: counted {observed.get(k, 0):g}, {source} {expected.get(k, 0)}"
            for k in differ[:SHOWN]
        ]
        more = f" (and {len(differ) - SHOWN} more)" if len(differ) > SHOWN else ""
        raise Problem("; ".join(lines) + more)


def route_of(labels: dict) -> str | None:
    """A counted series' route, or None for one of the unknown paths."""
    route = labels.get("route", "")
    return route if route in KNOWN_ROUTES else None


def check_answers(traffic: list[dict]) -> None:
    problems = []
    for item in traffic:
        what = f"{item['method']} {'an unknown path' if item['route'] is None else item['path']}"
        if item["status"] is None:
            problems.append(f"{what} got no answer ({item.get('error')})")
        elif item.get("malformed") and not 400 <= item["status"] < 500:
            problems.append(f"a malformed {what} got {item['status']}, not a 4xx")
        elif item.get("wrong_method") and item["status"] != 405:
            problems.append(f"{what} got {item['status']}, not 405")
        elif item["route"] is None and item["status"] != 404:
            problems.append(f"{what} got {item['status']}, not 404")
        elif "expected" in item and (item["status"] != 200 or item.get("answer") != item["expected"]):
            problems.append(
                f"{what} of {len(item['expected'])} row(s) got {item['status']} without the model's class for each row"
            )
        elif item["path"] == "/model" and item["status"] != 200:
            problems.append(f"{what} got {item['status']}, not 200")
    if problems:
        raise Problem(
            "; ".join(problems[:SHOWN]) + (f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else "")
        )


def expected_requests(traffic: list[dict]) -> Counter:
    expected: Counter = Counter()
    for item in traffic:
        if item["status"] is not None:
            expected[(("route", item["route"]), ("method", item["method"]), ("status", str(item["status"])))] += 1
    return expected


def check_requests(families: dict, traffic: list[dict]) -> None:
    observed: Counter = Counter()
    for labels, value in series(families, "http_requests", "_total", "counter", ("route", "method", "status")):
        if labels["route"] in UNMEASURED or value == 0:
            continue
        key = (("route", route_of(labels)), ("method", labels["method"]), ("status", labels["status"]))
        observed[key] += value
    expected = expected_requests(traffic)
    # Unknown paths are compared summed over whatever route value they share (bounded_labels
    # checks that it is one value): shown as route="(unknown paths)".
    rename = {
        k: tuple(("route", "(unknown paths)") if p == ("route", None) else p for p in k) for k in observed | expected
    }
    compare(
        Counter({rename[k]: v for k, v in observed.items()}),
        Counter({rename[k]: v for k, v in expected.items()}),
        "http_requests_total",
    )


def check_histogram(families: dict, traffic: list[dict], wall_s: float) -> None:
    name = "http_request_duration_seconds"
    buckets = series(families, name, "_bucket", "histogram", ("route", "le"))
    counts = series(families, name, "_count", "histogram", ("route",))
    sums = series(families, name, "_sum", "histogram", ("route",))
    # One histogram series per label set but le (a route, and any other labels).
    by_series: dict[tuple, list[tuple[float, float]]] = {}
    for labels, value in buckets:
        try:
            le = float(labels["le"])
        except ValueError:
            raise Problem(f'{name}_bucket has le="{labels["le"][:40]}", not a number') from None
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        by_series.setdefault(key, []).append((le, value))
    count_of = {tuple(sorted(labels.items())): value for labels, value in counts}
    for key, points in by_series.items():
        where = show(dict(key))
        points.sort()
        finite = [le for le, _ in points if math.isfinite(le)]
        if len(finite) < MIN_FINITE_BUCKETS or finite[0] > MAX_SMALLEST_BUCKET_S or finite[-1] < MIN_LARGEST_BUCKET_S:
            raise Problem(
                f"{name} needs at least {MIN_FINITE_BUCKETS} buckets from {MAX_SMALLEST_BUCKET_S:g} s or "
                f"less up to {MIN_LARGEST_BUCKET_S:g} s or more (in seconds); {where} has "
                f"{', '.join(f'{le:g}' for le in finite[:12]) or 'none'}"
            )
        if LATENCY_THRESHOLD_S not in finite:
            raise Problem(f'{name} needs a bucket at le="{LATENCY_THRESHOLD_S:g}", the latency alert\'s threshold')
        values = [value for _, value in points]
        if any(b < a for a, b in zip(values, values[1:], strict=False)):
            raise Problem(f"{name}_bucket{where} decreases as le grows: buckets are cumulative")
        if points[-1][0] != math.inf or points[-1][1] != count_of.get(key):
            raise Problem(f"{name}{where}: the +Inf bucket must equal _count")
    observed: Counter = Counter()
    for labels, value in counts:
        if labels["route"] not in UNMEASURED and value:
            observed[(("route", route_of(labels) or "(unknown paths)"),)] += value
    expected: Counter = Counter()
    for item in traffic:
        if item["status"] is not None:
            expected[(("route", item["route"] or "(unknown paths)"),)] += 1
    compare(observed, expected, f"{name}_count")
    total = sum(value for labels, value in sums if labels["route"] not in UNMEASURED)
    # The requests were sent one at a time: the time the service measured cannot add
    # up to more than the time the grader waited for the answers.
    if not 0 < total <= wall_s + 0.05:
        raise Problem(
            f"{name}_sum adds up to {total:g} s over requests the grader sent within {wall_s:.2f} s: "
            "observe seconds (time.perf_counter() differences), not milliseconds"
        )


def check_predictions(families: dict, traffic: list[dict]) -> None:
    observed: Counter = Counter()
    for labels, value in series(families, "predictions", "_total", "counter", ("predicted_class",)):
        if value:
            observed[(("predicted_class", labels["predicted_class"]),)] += value
    expected: Counter = Counter()
    for item in traffic:
        if "expected" in item and item["status"] == 200:
            answer = item.get("answer")
            # What the service answered, when it answered a class per row; else the model's.
            given = answer if isinstance(answer, list) and len(answer) == len(item["expected"]) else item["expected"]
            for predicted in given:
                expected[(("predicted_class", str(predicted)),)] += 1
    compare(observed, expected, "predictions_total", "the answers to the grader held")


def check_model_info(families: dict, version: str) -> None:
    # The text format has no info type: prometheus_client's Info is a gauge named <name>_info.
    found = [
        labels
        for family, samples in families.items()
        if not family.endswith(":type")
        for name, labels, value in samples
        if name == "model_info" and value == 1
    ]
    if not found:
        raise Problem('no model_info sample with value 1 on /metrics (prometheus_client\'s Info("model", ...))')
    versions = sorted({labels.get("version", "") for labels in found})
    if versions != [version]:
        raise Problem(
            f"model_info has version {', '.join(map(repr, versions))}, but the model served is version "
            f"{version!r}: read it from model/model.json, which the grader replaces"
        )


def check_bounded(families: dict, tokens: set[str]) -> None:
    for family, samples in families.items():
        if family.endswith(":type"):
            continue
        for name, labels, _ in samples:
            for label, value in labels.items():
                if any(token in value for token in tokens):
                    raise Problem(
                        f'{name} has {label}="{value[:80]}", a path the grader made up: label with the '
                        'route template, and put every unknown path under one value such as "unmatched"'
                    )
    routes = {labels["route"] for name, labels, _ in families.get("http_requests", []) if "route" in labels}
    if len(routes) > MAX_ROUTE_VALUES:
        raise Problem(
            f"http_requests_total has {len(routes)} route values; a service with 4 routes needs at most "
            f"{MAX_ROUTE_VALUES}"
        )
    unknown = {
        labels["route"]
        for name, labels, value in families.get("http_requests", [])
        if name == "http_requests_total" and value and labels.get("route") not in (*KNOWN_ROUTES, *UNMEASURED)
    }
    # None at all is the counting check's to report: this one is about too many.
    if len(unknown) > 1:
        raise Problem(
            f"the requests to unknown paths are counted under {len(unknown)} route values "
            f'({", ".join(sorted(unknown)[:SHOWN])}); they must share one, such as "unmatched"'
        )


def drive(client: httpx.Client) -> dict:
    model = Model(json.loads(MODEL.read_text()))
    rng = random.Random(secrets.randbits(64))
    traffic, tokens = make_traffic(rng, model)
    started = time.perf_counter()
    for item in traffic:
        if time.perf_counter() - started > TRAFFIC_BUDGET_S:
            failure = f"the service took more than {TRAFFIC_BUDGET_S:g} s to answer {len(traffic)} requests"
            return dict.fromkeys(KEYS, failure)
        send(client, item)
    wall_s = time.perf_counter() - started
    time.sleep(0.1)  # let a server that counts after sending the answer catch up
    observations: dict = {}
    observations["answers"] = _result(check_answers, traffic)
    try:
        families = parse(scrape(client))
    except ValueError as exc:
        failure = str(exc)
        return {**observations, **{key: failure for key in KEYS if key != "answers"}}
    observations["metrics_parse"] = True
    observations["requests_counted"] = _result(check_requests, families, traffic)
    observations["latency_histogram"] = _result(check_histogram, families, traffic, wall_s)
    observations["predictions_counted"] = _result(check_predictions, families, traffic)
    observations["model_info"] = _result(check_model_info, families, model.version)
    observations["bounded_labels"] = _result(check_bounded, families, tokens)
    observations["traffic"] = dict(Counter(f"{i['method']} {i['route'] or 'unknown'} {i['status']}" for i in traffic))
    return observations


def _result(check, *args) -> bool | str:
    try:
        check(*args)
    except Problem as exc:
        return str(exc)
    return True
