"""The content importer: `content/` files to the catalog, all or nothing.

Two phases. `content_load` reads and validates every file of every course under a
root into plain, typed data and collects *every* problem (file and field) instead of
stopping at the first. `content_import` writes that data in one transaction, and
only when there were no problems. Every object carries a hash of its source, so a
second import of the same files changes nothing; a module, lesson or lab missing from
the files is unpublished, never deleted (learners keep their history).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import yaml
from django.db import transaction
from pydantic import BaseModel, ValidationError

from .course_spec import CourseSpec, ModuleSpec, QuizSpec
from .markdown import render

M = TypeVar("M", bound=BaseModel)

MAX_TEXT_BYTES = 2 * 1024 * 1024
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Problem:
    path: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: {self.field}" if self.field else self.path
        return f"{where}: {self.message}"


class ContentError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the content")


@dataclass
class LessonData:
    slug: str
    title: str
    minutes: int
    body_html: str
    hash: str


@dataclass
class QuestionData:
    key: str
    prompt_html: str
    choices_html: list[str]
    answer: int
    explanation_html: str


@dataclass
class ModuleData:
    slug: str
    title: str
    summary: str
    estimated_hours: float
    lessons: list[LessonData]
    quiz_pass_mark: float | None
    questions: list[QuestionData]
    hash: str


@dataclass(frozen=True)
class LabContent:
    """How a course's labs/ folder is read and written. Labs sit above courses, so the
    labs app registers this in LabsConfig.ready() (labs/importer.py) and the importer
    never imports it: `load(reader, folder)` validates one lab folder (problems go to
    the reader) and returns its data or None; `write(course=, modules=, labs=,
    report=)` upserts a course's labs inside the import's transaction and unpublishes
    the ones no longer in the files."""

    load: Callable[[ContentReader, Path], Any]
    write: Callable[..., None]


lab_content: LabContent | None = None
LABS_NOT_INSTALLED = "this course has labs, but the labs app is not installed to import them"
PREREQUISITE_UNKNOWN = "no course {slug!r} in {root}: a prerequisite must be a course imported with this one"
PREREQUISITE_CYCLE = "prerequisites form a cycle: {cycle}"


@dataclass
class CourseData:
    spec: CourseSpec
    description_html: str
    modules: list[ModuleData]
    labs: list[Any]  # what lab_content.load returned, each with .spec.slug and .spec.module
    hash: str


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unpublished: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.unpublished)


class ContentReader:
    """Reads files relative to the content root, recording problems as it goes."""

    def __init__(self, root: Path):
        self.root = root
        self.problems: list[Problem] = []

    def rel(self, path: Path) -> str:
        for base in (self.root.parent, self.root.resolve().parent):
            try:
                return str(path.relative_to(base))
            except ValueError:
                continue
        return str(path)

    def problem(self, path: Path, field_name: str, message: str) -> None:
        self.problems.append(Problem(self.rel(path), field_name, message))

    def text(self, path: Path, field_name: str = "") -> str | None:
        if path.is_symlink() or not path.is_file():
            self.problem(path, field_name, "file not found")
            return None
        if path.stat().st_size > MAX_TEXT_BYTES:
            self.problem(path, field_name, f"file is larger than {MAX_TEXT_BYTES} bytes")
            return None
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            self.problem(path, field_name, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
            return None

    def yaml(self, path: Path) -> object | None:
        text = self.text(path)
        if text is None:
            return None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
            reason = getattr(exc, "problem", None) or str(exc)
            self.problem(path, where, f"YAML syntax error: {reason}")
            return None

    def model(self, path: Path, model: type[M]) -> M | None:
        data = self.yaml(path)
        if data is None and not self.problems_for(path):
            self.problem(path, "", "the file is empty")
            return None
        if data is None:
            return None
        if not isinstance(data, dict):
            self.problem(path, "", "expected a mapping of fields at the top level")
            return None
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                loc = ".".join(str(part) for part in error["loc"] if part != "function-after")
                message = error["msg"].removeprefix("Value error, ")
                self.problem(path, loc, message)
            return None

    def problems_for(self, path: Path) -> bool:
        rel = self.rel(path)
        return any(problem.path == rel for problem in self.problems)

    def inside(self, base: Path, relative: str, owner: Path, field_name: str) -> Path | None:
        """A path named by a content file, which must stay inside `base`."""
        candidate = (base / relative).resolve()
        if not candidate.is_relative_to(base.resolve()):
            self.problem(owner, field_name, f"{relative!r} points outside {self.rel(base)}")
            return None
        if not candidate.exists():
            self.problem(owner, field_name, f"{relative!r} does not exist")
            return None
        return candidate


# Part of every content hash: bump it when rendering changes, so that a re-import
# re-renders objects whose source files did not change.
RENDER_VERSION = "3"  # 3: SuperFences (fences in lists), the course overview without its title


def content_sha256(*parts: bytes | str) -> str:
    digest = hashlib.sha256(RENDER_VERSION.encode())
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _files_under(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not path.is_symlink()
        and "__pycache__" not in path.parts
        and not path.name.endswith(".pyc")
    )


def zip_folder(folder: Path, prefix: str) -> bytes:
    """A deterministic zip (fixed dates, sorted names) so its hash is stable."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in _files_under(folder):
            name = str(PurePosixPath(prefix) / path.relative_to(folder).as_posix())
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def tar_folder(folder: Path, extra: dict[str, Path] | None = None) -> bytes:
    """A deterministic .tar.gz of a folder (sorted, zero dates, root-owned), plus
    `extra` files ({name in the archive: source}) such as the course's shared scripts."""
    files = {path.relative_to(folder).as_posix(): path for path in _files_under(folder)} if folder.is_dir() else {}
    files.update(extra or {})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, path in sorted(files.items()):
            info = tarfile.TarInfo(name)
            data = path.read_bytes()
            info.size = len(data)
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def without_leading_title(text: str) -> str:
    """A lesson's own `# Title` line is dropped: the page shows the title from
    module.yaml as its one h1."""
    lines = text.lstrip("\n").split("\n", 1)
    if lines[0].startswith("# "):
        return lines[1] if len(lines) > 1 else ""
    return text


def _load_module(reader: ContentReader, folder: Path) -> tuple[ModuleSpec, ModuleData] | None:
    spec_path = folder / "module.yaml"
    spec = reader.model(spec_path, ModuleSpec)
    if spec is None:
        return None
    lessons: list[LessonData] = []
    for index, ref in enumerate(spec.lessons):
        path = reader.inside(folder, ref.file, spec_path, f"lessons.{index}.file")
        if path is None:
            continue
        text = reader.text(path)
        if text is None:
            continue
        lessons.append(
            LessonData(
                slug=ref.slug,
                title=ref.title,
                minutes=ref.minutes,
                body_html=render(without_leading_title(text)),
                hash=content_sha256(ref.model_dump_json(), text),
            )
        )
    quiz: QuizSpec | None = None
    if spec.quiz:
        quiz_path = reader.inside(folder, spec.quiz, spec_path, "quiz")
        if quiz_path is not None:
            quiz = reader.model(quiz_path, QuizSpec)
    questions = [
        QuestionData(
            key=question.id,
            prompt_html=render(question.prompt),
            choices_html=[render(choice) for choice in question.choices],
            answer=question.answer,
            explanation_html=render(question.explanation),
        )
        for question in (quiz.questions if quiz else [])
    ]
    data = ModuleData(
        slug=spec.slug,
        title=spec.title,
        summary=spec.summary,
        estimated_hours=spec.estimated_hours,
        lessons=lessons,
        quiz_pass_mark=quiz.pass_mark if quiz else None,
        questions=questions,
        hash=content_sha256(
            spec.model_dump_json(),
            quiz.model_dump_json() if quiz else "",
            *(lesson.hash for lesson in lessons),
        ),
    )
    return spec, data


def _check_manifest(reader: ContentReader, course_dir: Path, spec: CourseSpec) -> None:
    if not spec.data_manifest:
        return
    manifest_path = reader.inside(course_dir, spec.data_manifest, course_dir / "course.yaml", "data_manifest")
    if manifest_path is None:
        return
    text = reader.text(manifest_path)
    if text is None:
        return
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        reader.problem(manifest_path, f"line {exc.lineno}", f"invalid JSON: {exc.msg}")
        return
    if not isinstance(manifest, dict):
        reader.problem(manifest_path, "", "expected an object mapping paths to SHA-256 digests")
        return
    for relative, expected in sorted(manifest.items()):
        path = course_dir / relative
        if not path.is_file():
            reader.problem(manifest_path, relative, "data file is missing (run make_data.py)")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            reader.problem(manifest_path, relative, "data file does not match the manifest (run make_data.py)")


LESSON_LINK_MODULE = "no module with slug {module!r} in this course"
LESSON_LINK_LESSON = "module {module!r} has no lesson {lesson!r}"
LESSON_LINK_SECTION = "lesson {module}/{lesson} has no section #{section} (a heading's anchor)"


def _check_lesson_links(reader: ContentReader, labs_dir: Path, labs: list[Any], modules: list[ModuleData]) -> None:
    """Each check's `lesson: MODULE/LESSON#SECTION` must name a lesson of this course,
    and a heading of it: a broken link on a failing check is worse than none."""
    lessons = {module.slug: {lesson.slug: lesson for lesson in module.lessons} for module in modules}
    for lab in labs:
        for index, check in enumerate(getattr(lab.spec, "checks", [])):
            ref = getattr(check, "lesson", None)
            if not ref:
                continue
            path, _, section = ref.partition("#")
            module, _, lesson = path.partition("/")
            field_name = f"checks.{index}.lesson"
            spec_path = labs_dir / lab.spec.slug / "lab.yaml"
            if module not in lessons:
                reader.problem(spec_path, field_name, LESSON_LINK_MODULE.format(module=module))
            elif lesson not in lessons[module]:
                reader.problem(spec_path, field_name, LESSON_LINK_LESSON.format(module=module, lesson=lesson))
            elif section and f'id="{section}"' not in lessons[module][lesson].body_html:
                reader.problem(
                    spec_path, field_name, LESSON_LINK_SECTION.format(module=module, lesson=lesson, section=section)
                )


def _load_course(reader: ContentReader, course_dir: Path) -> CourseData | None:
    spec_path = course_dir / "course.yaml"
    spec = reader.model(spec_path, CourseSpec)
    if spec is None:
        return None
    if spec.slug != course_dir.name:
        reader.problem(spec_path, "slug", f"{spec.slug!r} must match the folder name {course_dir.name!r}")
    description = ""
    if spec.description:
        path = reader.inside(course_dir, spec.description, spec_path, "description")
        description = (reader.text(path) if path else None) or ""
    _check_manifest(reader, course_dir, spec)

    modules: list[ModuleData] = []
    module_specs: dict[str, ModuleSpec] = {}
    for index, folder_name in enumerate(spec.modules):
        folder = reader.inside(course_dir / "modules", folder_name, spec_path, f"modules.{index}")
        if folder is None:
            continue
        loaded = _load_module(reader, folder)
        if loaded is None:
            continue
        module_spec, data = loaded
        if module_spec.slug in module_specs:
            reader.problem(folder / "module.yaml", "slug", f"{module_spec.slug!r} is used by another module")
            continue
        module_specs[module_spec.slug] = module_spec
        modules.append(data)

    labs: list[Any] = []
    labs_dir = course_dir / "labs"
    lab_folders = (
        sorted(p for p in labs_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
        if labs_dir.is_dir()
        else []
    )
    if lab_folders and lab_content is None:
        # Never skipped in silence: the labs app reads lab folders.
        reader.problem(labs_dir, "", LABS_NOT_INSTALLED)
        lab_folders = []
    for folder in lab_folders:
        assert lab_content is not None
        lab = lab_content.load(reader, folder)
        if lab is not None:
            labs.append(lab)
    lab_slugs = {lab.spec.slug for lab in labs}
    for lab in labs:
        if lab.spec.module not in module_specs:
            reader.problem(
                labs_dir / lab.spec.slug / "lab.yaml",
                "module",
                f"no module with slug {lab.spec.module!r} in this course",
            )
    _check_lesson_links(reader, labs_dir, labs, modules)
    for module_spec in module_specs.values():
        if module_spec.lab and module_spec.lab not in lab_slugs and (labs_dir / module_spec.lab).is_dir() is False:
            reader.problem(course_dir / "modules", module_spec.slug, f"lab {module_spec.lab!r} does not exist")
    if spec.certificate:
        for index, requirement in enumerate(spec.certificate.requirements):
            if requirement.lab not in lab_slugs and not (labs_dir / requirement.lab).is_dir():
                reader.problem(
                    spec_path,
                    f"certificate.requirements.{index}.lab",
                    f"lab {requirement.lab!r} does not exist in this course",
                )
    # Order labs as their modules are ordered.
    module_order = {slug: i for i, slug in enumerate(module_specs)}
    labs.sort(key=lambda lab: (module_order.get(lab.spec.module, 999), lab.spec.slug))
    description_html = render(without_leading_title(description))  # the page shows the title as its one h1
    return CourseData(
        spec=spec,
        description_html=description_html,
        modules=modules,
        labs=labs,
        hash=content_sha256(spec.model_dump_json(), description),
    )


def content_load(root: Path) -> list[CourseData]:
    """Read and validate every course under `root`. Raises ContentError listing
    every problem found; reads only, writes nothing."""
    root = Path(root)
    reader = ContentReader(root)
    if not root.is_dir():
        raise ContentError([Problem(str(root), "", "content folder not found")])
    course_dirs = sorted(p for p in root.iterdir() if p.is_dir() and (p / "course.yaml").exists())
    if not course_dirs:
        raise ContentError([Problem(str(root), "", "no course folder (a folder with course.yaml) found")])
    courses: list[CourseData] = []
    for course_dir in course_dirs:
        course = _load_course(reader, course_dir)
        if course is not None:
            courses.append(course)
    _check_prerequisites(reader, root, courses)
    if reader.problems:
        raise ContentError(reader.problems)
    return courses


def _check_prerequisites(reader: ContentReader, root: Path, courses: list[CourseData]) -> None:
    """Each prerequisite names a course of this content folder, and following them
    never leads back to where it started."""
    graph = {course.spec.slug: course.spec.prerequisites for course in courses}
    for course in courses:
        spec_path = root / course.spec.slug / "course.yaml"
        for index, slug in enumerate(course.spec.prerequisites):
            if slug not in graph:
                reader.problem(
                    spec_path, f"prerequisites.{index}", PREREQUISITE_UNKNOWN.format(slug=slug, root=reader.rel(root))
                )
    reported: set[frozenset[str]] = set()
    for start in graph:
        # Depth-first from each course; a path that comes back to `start` is a cycle.
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        while stack:
            slug, path = stack.pop()
            for nxt in graph.get(slug, []):
                if nxt == start:
                    if frozenset(path) not in reported:
                        reported.add(frozenset(path))
                        reader.problem(
                            root / start / "course.yaml",
                            "prerequisites",
                            PREREQUISITE_CYCLE.format(cycle=" → ".join([*path, start])),
                        )
                elif nxt in graph and nxt not in path:
                    stack.append((nxt, [*path, nxt]))


def upsert(model, lookup: dict, values: dict, content_hash: str, label: str, report: ImportReport):
    obj = model.objects.filter(**lookup).first()
    if obj is None:
        obj = model.objects.create(**lookup, **values, content_hash=content_hash)
        report.created.append(label)
        return obj
    if obj.content_hash == content_hash and all(
        getattr(obj, key) == value for key, value in values.items() if key in ("published", "order")
    ):
        report.unchanged.append(label)
        return obj
    for key, value in values.items():
        setattr(obj, key, value)
    obj.content_hash = content_hash
    obj.save()
    report.updated.append(label)
    return obj


def content_import(root: Path) -> ImportReport:
    """Validate the whole tree under `root`, then write it in one transaction.

    Raises ContentError (and writes nothing) if any file has a problem. Idempotent:
    unchanged objects are left alone, so a second run reports no changes.
    """
    from .models import Course, Lesson, Module, Question

    courses = content_load(root)
    report = ImportReport()
    with transaction.atomic():
        for data in courses:
            spec = data.spec
            certificate = spec.certificate
            course = upsert(
                Course,
                {"slug": spec.slug},
                {
                    "title": spec.title,
                    "summary": spec.summary,
                    "description_html": data.description_html,
                    "estimated_hours": spec.estimated_hours,
                    "published": spec.published,
                    "order": spec.order,
                    "certificate_title": certificate.title if certificate else "",
                    "requirements": [r.model_dump() for r in certificate.requirements] if certificate else [],
                    "prerequisites": list(spec.prerequisites),
                },
                data.hash,
                f"course {spec.slug}",
                report,
            )
            kept_modules = []
            for order, module_data in enumerate(data.modules):
                module = upsert(
                    Module,
                    {"course": course, "slug": module_data.slug},
                    {
                        "title": module_data.title,
                        "summary": module_data.summary,
                        "order": order,
                        "estimated_hours": module_data.estimated_hours,
                        "quiz_pass_mark": module_data.quiz_pass_mark,
                        "published": True,
                    },
                    module_data.hash,
                    f"module {spec.slug}/{module_data.slug}",
                    report,
                )
                kept_modules.append(module.pk)
                kept_lessons = []
                for l_order, lesson_data in enumerate(module_data.lessons):
                    lesson = upsert(
                        Lesson,
                        {"module": module, "slug": lesson_data.slug},
                        {
                            "title": lesson_data.title,
                            "order": l_order,
                            "minutes": lesson_data.minutes,
                            "body_html": lesson_data.body_html,
                            "published": True,
                        },
                        lesson_data.hash,
                        f"lesson {spec.slug}/{module_data.slug}/{lesson_data.slug}",
                        report,
                    )
                    kept_lessons.append(lesson.pk)
                unpublish(
                    Lesson.objects.filter(module=module).exclude(pk__in=kept_lessons),
                    "lesson",
                    report,
                )
                kept_questions = []
                for q_order, question in enumerate(module_data.questions):
                    obj, _ = Question.objects.update_or_create(
                        module=module,
                        key=question.key,
                        defaults={
                            "order": q_order,
                            "prompt_html": question.prompt_html,
                            "choices_html": question.choices_html,
                            "answer": question.answer,
                            "explanation_html": question.explanation_html,
                            "published": True,
                        },
                    )
                    kept_questions.append(obj.pk)
                Question.objects.filter(module=module).exclude(pk__in=kept_questions).update(published=False)
            unpublish(Module.objects.filter(course=course).exclude(pk__in=kept_modules), "module", report)
            if lab_content is not None:
                modules = {module.slug: module for module in Module.objects.filter(course=course)}
                lab_content.write(course=course, modules=modules, labs=data.labs, report=report)
    return report


def unpublish(queryset, kind: str, report: ImportReport) -> None:
    for obj in queryset.filter(published=True):
        obj.published = False
        obj.save(update_fields=["published"])
        report.unpublished.append(f"{kind} {obj}")
