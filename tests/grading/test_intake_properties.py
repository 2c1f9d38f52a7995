"""Intake, property-tested: whatever bytes a learner uploads, intake gives a snapshot
or an IntakeError with a one-line message, never another exception, and leaves
nothing behind when it refuses."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grading import intake
from grading.intake import IntakeError, IntakeLimits

# Duplicate entry names are one of the hostile inputs, on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")
FEW = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
LIMITS = IntakeLimits(upload_max_bytes=64 * 1024, unpacked_max_bytes=256 * 1024, max_entries=50)

names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=0, max_size=30
) | st.sampled_from(
    ["../x", "/etc/passwd", "a/../../b", "a\\..\\b", "a//b", ".", "", "con", "a/", "x" * 300, "top/", "top/a.py"]
)


def intake_outcome(fileobj, filename: str, lab_kind: str, dest) -> str:
    """'snapshot' or 'rejected'; anything else propagates and fails the property."""
    before = set(dest.iterdir())
    try:
        snapshot = intake.snapshot_from_upload(fileobj, filename, lab_kind=lab_kind, dest_dir=dest, limits=LIMITS)
    except IntakeError as exc:
        assert exc.message and "\n" not in exc.message
        assert set(dest.iterdir()) == before  # nothing left behind
        return "rejected"
    assert snapshot.path.exists() and snapshot.path.parent == dest
    return "snapshot"


@FEW
@given(data=st.binary(max_size=2000), filename=st.sampled_from(["repo.zip", "repo.tar.gz", "repo.tgz"]))
def test_any_bytes_uploaded_as_an_archive_give_a_snapshot_or_a_message(tmp_path_factory, data, filename):
    dest = tmp_path_factory.mktemp("dest")
    intake_outcome(io.BytesIO(data), filename, "repo", dest)


@FEW
@given(entries=st.lists(st.tuples(names, st.binary(max_size=200)), max_size=8))
def test_any_zip_entries_give_a_snapshot_or_a_message(tmp_path_factory, entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            archive.writestr(name or "_", data)
    buffer.seek(0)
    intake_outcome(buffer, "repo.zip", "repo", tmp_path_factory.mktemp("dest"))


member_types = st.sampled_from(
    [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE]
)


@FEW
@given(entries=st.lists(st.tuples(names, member_types, names, st.binary(max_size=100)), max_size=8))
def test_any_tar_members_give_a_snapshot_or_a_message(tmp_path_factory, entries):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for name, kind, target, data in entries:
            info = tarfile.TarInfo(name or "_")
            info.type = kind
            info.linkname = target
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            archive.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    buffer.seek(0)
    intake_outcome(buffer, "repo.tar.gz", "repo", tmp_path_factory.mktemp("dest"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25,
)
notebook_like = st.fixed_dictionaries(
    {
        "nbformat": st.integers(3, 5) | json_values,
        "nbformat_minor": st.integers(0, 5),
        "metadata": json_values,
        "cells": st.lists(
            st.fixed_dictionaries(
                {
                    "cell_type": st.sampled_from(["code", "markdown", "raw", "x"]),
                    "source": st.text(max_size=30) | json_values,
                    "metadata": st.just({}),
                }
            ),
            max_size=3,
        ),
    }
)


@FEW
@given(
    data=st.binary(max_size=1000)
    | st.just(b"[" * 100_000)
    | json_values.map(lambda v: json.dumps(v).encode())
    | notebook_like.map(lambda v: json.dumps(v).encode())
)
def test_any_bytes_uploaded_as_a_notebook_give_a_snapshot_or_a_message(tmp_path_factory, data):
    intake_outcome(io.BytesIO(data), "analysis.ipynb", "notebook", tmp_path_factory.mktemp("dest"))


def test_a_notebook_of_100000_nested_brackets_is_rejected_with_a_message(tmp_path):
    assert intake_outcome(io.BytesIO(b"[" * 100_000), "analysis.ipynb", "notebook", tmp_path) == "rejected"
