"""A course's labs/ folder in the content importer (courses/importer.py).

Labs sit above courses, so the importer does not import this module: LabsConfig.ready()
registers `lab_load` and `labs_write` as courses.importer.lab_content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from courses.importer import (
    ContentReader,
    ImportReport,
    content_sha256,
    tar_folder,
    unpublish,
    upsert,
    without_leading_title,
    zip_folder,
)
from courses.markdown import render

from .lab_spec import LabSpec
from .models import Lab
from .variants import is_plain_relative, variant_problems


@dataclass
class LabData:
    spec: LabSpec
    instructions_html: str
    starter_zip: bytes
    hidden_archive: bytes
    hash: str


SHARED_IN_BOTH = "{path!r} is both in the course's shared/ and in this lab's hidden/: keep one"
SHARED_BAD_PATH = "{path!r} must be a relative path inside the course's shared/ folder, without '..'"
SHARED_NOT_A_FILE = "{path!r} is not a file of the course's shared/ folder"


def _shared_files(reader: ContentReader, folder: Path, spec: LabSpec, spec_path: Path) -> dict[str, Path] | None:
    """The course's shared/ files this lab asks for, by their path in the hidden
    archive; None when one of them is wrong (each problem is reported)."""
    shared_dir = folder.parent.parent / "shared"
    found: dict[str, Path] = {}
    ok = True
    for index, entry in enumerate(spec.shared):
        if not is_plain_relative(entry):
            reader.problem(spec_path, f"shared.{index}", SHARED_BAD_PATH.format(path=entry))
            ok = False
            continue
        source = reader.inside(shared_dir, entry, spec_path, f"shared.{index}")
        if source is None:
            ok = False
        elif not source.is_file():
            reader.problem(spec_path, f"shared.{index}", SHARED_NOT_A_FILE.format(path=entry))
            ok = False
        elif (folder / "hidden" / entry).exists():
            reader.problem(spec_path, f"shared.{index}", SHARED_IN_BOTH.format(path=entry))
            ok = False
        else:
            found[PurePosixPath(entry).as_posix()] = source
    return found if ok else None


def lab_load(reader: ContentReader, folder: Path) -> LabData | None:
    spec_path = folder / "lab.yaml"
    spec = reader.model(spec_path, LabSpec)
    if spec is None:
        return None
    if spec.slug != folder.name:
        reader.problem(spec_path, "slug", f"{spec.slug!r} must match the folder name {folder.name!r}")
    ok = True
    instructions_path = reader.inside(folder, spec.instructions, spec_path, "instructions")
    instructions = reader.text(instructions_path) if instructions_path else None
    ok = ok and instructions is not None
    starter_zip = b""
    if spec.starter:
        starter = reader.inside(folder, spec.starter, spec_path, "starter")
        if starter is not None and not starter.is_dir():
            reader.problem(spec_path, "starter", f"{spec.starter!r} is not a folder")
            starter = None
        if starter is None:
            ok = False
        else:
            starter_zip = zip_folder(starter, f"{spec.slug}-starter")
    hidden = folder / "hidden"
    for index, item in enumerate(spec.files):
        if not item.from_.startswith(("starter/", "hidden/")):
            reader.problem(spec_path, f"files.{index}.from", "must start with starter/ or hidden/")
            ok = False
        elif reader.inside(folder, item.from_, spec_path, f"files.{index}.from") is None:
            ok = False
    shared = _shared_files(reader, folder, spec, spec_path)
    if shared is None:
        ok = False
        shared = {}
    for s_index, stage in enumerate(spec.stages):
        for a_index, asset in enumerate(stage.assets):
            if asset in shared or any(path.startswith(asset.rstrip("/") + "/") for path in shared):
                continue  # a shared file, or a folder of shared files
            if reader.inside(hidden, asset, spec_path, f"stages.{s_index}.assets.{a_index}") is None:
                ok = False
    for s_index, stage in enumerate(spec.stages):
        if stage.service is not None and stage.service.requests is not None:
            path = reader.inside(hidden, stage.service.requests, spec_path, f"stages.{s_index}.service.requests")
            if path is None:
                ok = False
            else:
                try:
                    json.loads(path.read_text())
                except ValueError as exc:
                    reader.problem(path, "", f"invalid JSON: {exc}")
                    ok = False
    for c_index, check in enumerate(spec.checks):
        labels = getattr(check, "labels", None)
        if labels and reader.inside(hidden, labels, spec_path, f"checks.{c_index}.labels") is None:
            ok = False
    if spec.reference and reader.inside(folder, spec.reference, spec_path, "reference") is None:
        ok = False
    for v_index, variant in enumerate(spec.variants):
        if reader.inside(folder, variant.path, spec_path, f"variants.{v_index}.path") is None:
            ok = False
            continue
        for message in variant_problems(folder, spec, variant):
            reader.problem(spec_path, f"variants.{v_index}.remove", message)
            ok = False
    for name, value in (("reference", spec.reference), *(("variants", v.path) for v in spec.variants)):
        if value and not value.startswith("hidden/"):
            reader.problem(spec_path, name, f"{value!r} must be under hidden/ (learners must never see it)")
            ok = False
    if not ok or instructions is None:
        return None
    hidden_archive = tar_folder(hidden, shared)
    return LabData(
        spec=spec,
        instructions_html=render(without_leading_title(instructions)),
        starter_zip=starter_zip,
        hidden_archive=hidden_archive,
        hash=content_sha256(spec.model_dump_json(by_alias=True), instructions, starter_zip, hidden_archive),
    )


def labs_write(*, course, modules: dict, labs: list[LabData], report: ImportReport) -> None:
    """Upsert `course`'s labs in file order (inside the import's transaction) and
    unpublish the ones no longer in the files (never deleted: learners keep their
    history)."""
    kept_labs = []
    for order, lab_data in enumerate(labs):
        lab_spec = lab_data.spec
        lab = upsert(
            Lab,
            {"course": course, "slug": lab_spec.slug},
            {
                "module": modules.get(lab_spec.module),
                "title": lab_spec.title,
                "kind": lab_spec.kind,
                "summary": lab_spec.summary,
                "estimated_hours": lab_spec.estimated_hours,
                "order": order,
                "instructions_html": lab_data.instructions_html,
                "pass_mark": lab_spec.pass_mark,
                "spec": lab_spec.model_dump(mode="json", by_alias=True),
                "starter_zip": lab_data.starter_zip,
                "hidden_archive": lab_data.hidden_archive,
                "published": True,
            },
            lab_data.hash,
            f"lab {course.slug}/{lab_spec.slug}",
            report,
        )
        kept_labs.append(lab.pk)
    unpublish(Lab.objects.filter(course=course).exclude(pk__in=kept_labs), "lab", report)
