"""Every lab of every course keeps its hidden/ folder in the layout docs/authoring.md
describes, so an author who knows one lab finds their way in all of them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from labs.lab_spec import LabSpec

CONTENT = Path(__file__).resolve().parents[2] / "content"
HIDDEN_LAYOUT = {"reference", "variants", "grader", "data", "requests"}
LAB_FOLDERS = sorted(p for p in CONTENT.glob("*/labs/*") if p.is_dir())


@pytest.mark.parametrize("lab", LAB_FOLDERS, ids=lambda p: f"{p.parents[1].name}/{p.name}")
def test_a_lab_hidden_folder_holds_only_the_documented_folders(lab):
    entries = {p.name for p in (lab / "hidden").iterdir() if p.name != "__pycache__"}
    assert entries <= HIDDEN_LAYOUT, sorted(entries - HIDDEN_LAYOUT)
    assert all((lab / "hidden" / name).is_dir() for name in entries)


@pytest.mark.parametrize("lab", LAB_FOLDERS, ids=lambda p: f"{p.parents[1].name}/{p.name}")
def test_a_folder_variant_holds_no_byte_for_byte_copy_of_the_reference(lab):
    spec = LabSpec.model_validate(yaml.safe_load((lab / "lab.yaml").read_text()))
    reference = lab / spec.reference if spec.reference else None
    copies = []
    for variant in spec.variants:
        folder = lab / variant.path
        if reference is None or not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            twin = reference / path.relative_to(folder)
            if path.is_file() and twin.is_file() and twin.read_bytes() == path.read_bytes():
                copies.append(str(path.relative_to(lab)))
    assert not copies, copies
