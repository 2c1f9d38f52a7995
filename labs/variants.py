"""A lab's wrong and hostile variants as overlays on its reference solution.

A folder variant holds only the files that differ from the reference (changed or
added), and its lab.yaml entry may list `remove:` paths of the reference that the
variant lacks. The solution a variant stands for is the reference, then the overlay
copied over it, then the removals. A single-file variant (a notebook) is whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

from .lab_spec import LabSpec, VariantSpec

# Messages for the importer, as constants so tests assert them exactly.
REMOVE_NOT_IN_REFERENCE = "{path!r} is not in the reference {reference!r}: there is nothing to remove"
REMOVE_ALSO_IN_OVERLAY = "{path!r} is both removed and provided by the variant folder"
REMOVE_NEEDS_FOLDERS = "remove: needs a folder reference and a folder variant"
REMOVE_BAD_PATH = "{path!r} must be a relative path inside the reference, without '..'"


def hidden_relative(path: str) -> str:
    """lab.yaml names variants from the lab folder (`hidden/...`); the archive's root is hidden/."""
    return path.removeprefix("hidden/")


def is_plain_relative(path: str) -> bool:
    pure = PurePosixPath(path)
    return bool(path) and not pure.is_absolute() and ".." not in pure.parts and pure.parts != (".",)


def variant_problems(lab_folder: Path, spec: LabSpec, variant: VariantSpec) -> list[str]:
    """What is wrong with a variant's overlay (empty when nothing); paths from lab.yaml."""
    if not variant.remove:
        return []
    reference = lab_folder / spec.reference if spec.reference else None
    overlay = lab_folder / variant.path
    if reference is None or not reference.is_dir() or not overlay.is_dir():
        return [REMOVE_NEEDS_FOLDERS]
    problems = []
    for entry in variant.remove:
        if not is_plain_relative(entry):
            problems.append(REMOVE_BAD_PATH.format(path=entry))
        elif not (reference / entry).exists():
            problems.append(REMOVE_NOT_IN_REFERENCE.format(path=entry, reference=spec.reference))
        elif (overlay / entry).exists():
            problems.append(REMOVE_ALSO_IN_OVERLAY.format(path=entry))
    return problems


def materialise(hidden: Path, spec: LabSpec, variant: VariantSpec, dest: Path) -> Path:
    """The variant's whole solution, built under `dest` (a fresh path); `hidden` is
    the lab's unpacked hidden/ folder. A file variant is returned as it is."""
    source = hidden / hidden_relative(variant.path)
    if not source.is_dir():
        return source
    reference = hidden / hidden_relative(spec.reference) if spec.reference else None
    if reference is not None and reference.is_dir():
        # symlinks=True: a link in the content is copied as a link, never followed out
        # of the hidden folder (the importer archives no links anyway).
        shutil.copytree(reference, dest, symlinks=True)
    else:
        dest.mkdir(parents=True)
    shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)
    for entry in variant.remove:
        target = dest / entry
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    return dest
