"""Runs INSIDE the learner's kernel, after their notebook: call one group of their
functions on the probe inputs and print the JSON-safe observations after MARKER.

run_notebook.py executes this file's source with exec() in a private namespace
holding NS (the learner's globals), GROUP ("defines", "clean", "schema" or "split"),
CASES_PATH, TRAIN_PATH and MARKER. Nothing here may raise: every failure of the
learner's code becomes an observation string. Observations must be identical for
any two correct solutions (the host compares them with the reference's), so they
record behaviour only (values, dtype kinds, index labels, which columns an error
names), never object identities or message wording.
"""

import hashlib
import json
import sys
import traceback

import numpy as np
import pandas as pd
from pandas.api import types as pdt

FUNCTIONS = ("clean", "schema_errors", "split")
MAX_TEXT = 600


def _short(text, limit=MAX_TEXT):
    text = str(text)
    return text if len(text) <= limit else text[: limit - 15] + " ...[truncated]"


def _raised(call, exc):
    """The error and the learner's innermost frame (the grader's own frames left out)."""
    text = f"{call} raised {type(exc).__name__}: {exc}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != "shipwright-probe"]
    own = [f for f in frames if "site-packages" not in f.filename] or frames
    if own:
        f = own[-1]
        text += f"\n  in {f.name}(), line {f.lineno}: {(f.line or '').strip()}"
    return _short(text)


def _kind(dtype):
    if pdt.is_bool_dtype(dtype):
        return "bool"
    if pdt.is_integer_dtype(dtype):
        return "int"
    if pdt.is_float_dtype(dtype):
        return "float"
    if pdt.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if isinstance(dtype, pd.StringDtype):
        return "str"
    if pdt.is_object_dtype(dtype):
        return "object"
    return str(dtype)


def _value(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if v != v:
            return None
        return v if abs(v) != float("inf") else ("inf" if v > 0 else "-inf")
    if isinstance(v, str):
        return v
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return repr(v)


def _labels(index):
    return [_value(v) for v in index]


def _sha(obj):
    return hashlib.sha256(json.dumps(obj).encode()).hexdigest()[:16]


def _frame(df, parts):
    """Small frames in full: the requested parts of columns/dtypes/index/values."""
    out = {}
    if "columns" in parts:
        out["columns"] = [_value(c) for c in df.columns]
    if "dtypes" in parts:
        out["dtypes"] = [_kind(t) for t in df.dtypes]
    if "index" in parts:
        out["index"] = _labels(df.index)
    if "values" in parts:
        out["values"] = [[_value(v) for v in row] for row in df.itertuples(index=False, name=None)]
    return out


def _fingerprint(df, target):
    """Large frames summarised: counts in clear, row order and contents as short hashes."""
    values = [[_value(v) for v in row] for row in df.itertuples(index=False, name=None)]
    out = {
        "rows": int(df.shape[0]),
        "columns": int(df.shape[1]),
        "index_head": _labels(df.index[:6]),
        "index_sha": _sha(_labels(df.index)),
        "values_sha": _sha([[_value(c) for c in df.columns], values]),
    }
    if target in df.columns:
        counts = df[target].value_counts()
        out["class_counts"] = {str(_value(k)): int(n) for k, n in sorted(counts.items())}
    return out


def _make(spec):
    columns = {
        name: pd.Series([row[i] for row in spec["rows"]], dtype=dtype)
        for i, (name, dtype) in enumerate(zip(spec["columns"], spec["dtypes"], strict=True))
    }
    frame = pd.DataFrame(columns)
    if "index" in spec:
        frame.index = pd.Index(spec["index"])
    return frame


def _same(a, b):
    return (
        a.shape == b.shape
        and list(a.columns) == list(b.columns)
        and list(a.dtypes) == list(b.dtypes)
        and a.index.equals(b.index)
        and a.equals(b)
    )


def _function(name):
    fn = NS.get(name)  # noqa: F821 (provided by run_notebook.py)
    return fn if callable(fn) else None


def _call(name, *args, **kwargs):
    """(result, None) or (None, observation text)."""
    fn = _function(name)
    if fn is None:
        return None, f"the notebook does not define {name}()"
    try:
        return fn(*args, **kwargs), None
    except BaseException as exc:  # noqa: BLE001 - learner code may raise anything, even SystemExit
        if isinstance(exc, KeyboardInterrupt):
            raise
        return None, _raised(f"{name}()", exc)


def _dataframe(name, result):
    if isinstance(result, pd.DataFrame):
        return result, None
    return None, f"{name}() returned {type(result).__name__}, expected a pandas DataFrame"


def probe_defines(cases, train):
    missing = [f"{n}()" for n in FUNCTIONS if _function(n) is None]
    if not missing:
        return {"defines": True}
    return {"defines": "the notebook does not define " + ", ".join(missing)}


def probe_clean(cases, train):
    frames = cases["frames"]
    obs = {}
    unchanged = []
    new_frame = []

    def run(frame_name, source):
        given = source.copy(deep=True)
        result, err = _call("clean", given)
        if err is None:
            result, err = _dataframe("clean", result)
        if err is None:
            if not _same(given, source):
                unchanged.append(frame_name)
            if result is given:
                new_frame.append(frame_name)
        return result, err

    def full(key, frame_name, parts):
        result, err = run(frame_name, _make(frames[frame_name]))
        obs[key] = err if err is not None else _frame(result, parts)

    full("clean_nulls", "nulls", ("columns", "dtypes", "values"))
    full("clean_every_row_has_a_null", "every_row_has_a_null", ("columns", "dtypes", "values"))
    full("clean_duplicates", "duplicates", ("columns", "values"))
    full("clean_duplicates_and_nulls", "mixed", ("columns", "values"))

    index_obs = {}
    for frame_name in ("mixed", "labelled", "nulls"):
        result, err = run(frame_name, _make(frames[frame_name]))
        if err is not None:
            index_obs[frame_name] = err
        else:
            labels = _labels(result.index)
            # True when reset, so a wrong row count shows in the clean_* keys, not here.
            index_obs[frame_name] = True if labels == list(range(len(labels))) else labels
    obs["clean_index"] = index_obs

    result, err = run("data/train.csv", train)
    obs["clean_train_csv"] = err if err is not None else _fingerprint(result, "target")

    obs["clean_input_unchanged"] = (
        True if not unchanged else "clean() modified the frame it was given: " + ", ".join(dict.fromkeys(unchanged))
    )
    obs["clean_returns_new_frame"] = (
        True
        if not new_frame
        else "clean() returned the very frame it was given (not a new one): " + ", ".join(dict.fromkeys(new_frame))
    )
    return obs


def _names(schema, errors):
    """Which schema column each error string names (the longest name it contains)."""
    if not isinstance(errors, (list, tuple)):
        return f"schema_errors() returned {type(errors).__name__}, expected a list of strings"
    named = []
    for text in errors:
        if not isinstance(text, str):
            return f"schema_errors() returned a list holding {type(text).__name__}, expected strings"
        hits = [col for col in schema if col in text]
        named.append(max(hits, key=len) if hits else "(names no schema column) " + _short(text, 80))
    return named


def probe_schema(cases, train):
    frames = cases["frames"]
    schemas = cases["schemas"]
    typed = _make(frames["typed"])
    obs = {}

    def run(key, frame, schema):
        result, err = _call("schema_errors", frame.copy(deep=True), dict(schema))
        obs[key] = err if err is not None else _names(schema, result)

    full_schema = {c: "float" for c in train.columns if c != "target"}
    full_schema["target"] = "int"
    run("schema_train_csv_fits", train, full_schema)
    run("schema_missing", typed, schemas["missing"])
    run("schema_mistyped", typed, schemas["mistyped"])
    run("schema_missing_and_mistyped", typed, schemas["mixed"])
    run("schema_empty_frame_fits", typed.head(0), schemas["fits"])
    target_float = dict(full_schema, target="float")
    run("schema_train_csv_target_as_float", train, target_float)
    return obs


def _pair(result):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return None, f"split() returned {type(result).__name__}, expected a (train_df, test_df) tuple"
    if not all(isinstance(part, pd.DataFrame) for part in result):
        kinds = ", ".join(type(part).__name__ for part in result)
        return None, f"split() returned ({kinds}), expected two pandas DataFrames"
    return result, None


def probe_split(cases, train):
    frames = cases["frames"]
    obs = {}

    def run(key, frame, label, summarise, **kwargs):
        result, err = _call("split", frame.copy(deep=True), **kwargs)
        if err is None:
            result, err = _pair(result)
        if err is not None:
            obs[key] = err
        else:
            obs[key] = {"train": summarise(result[0], label), "test": summarise(result[1], label)}

    def small(df, target):
        out = _frame(df, ("columns", "index"))
        out["class_counts"] = (
            {str(_value(k)): int(n) for k, n in sorted(df[target].value_counts().items())}
            if target in df.columns
            else None
        )
        return out

    run("split_defaults", train, "target", _fingerprint)
    run("split_test_size_033_seed_7", train, "target", _fingerprint, test_size=0.33, seed=7)
    run(
        "split_other_target",
        _make(frames["by_label"]),
        "label",
        small,
        target="label",
        test_size=0.25,
        seed=3,
    )
    return obs


def main():
    with open(CASES_PATH) as fh:  # noqa: F821
        cases = json.load(fh)
    train = pd.read_csv(TRAIN_PATH)  # noqa: F821
    probe = {
        "defines": probe_defines,
        "clean": probe_clean,
        "schema": probe_schema,
        "split": probe_split,
    }[GROUP]  # noqa: F821
    obs = probe(cases, train)
    sys.stdout.write("\n" + MARKER + json.dumps(obs, allow_nan=False) + "\n")  # noqa: F821
    sys.stdout.flush()


main()
