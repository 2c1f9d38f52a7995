from __future__ import annotations

import io
import tarfile
import textwrap
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from courses.importer import ContentError, content_import, content_load
from courses.models import Course, Lesson, Module, Question
from labs.importer import SHARED_IN_BOTH
from labs.models import Lab
from labs.variants import REMOVE_ALSO_IN_OVERLAY, REMOVE_BAD_PATH, REMOVE_NOT_IN_REFERENCE, materialise


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small valid content tree: one course, two modules, one lab."""
    root = tmp_path / "content"
    course = root / "demo"
    write(
        course / "course.yaml",
        """
        slug: demo
        title: Demo course
        summary: A course for tests.
        description: overview.md
        estimated_hours: 3
        published: true
        modules: [01-first, 02-second]
        certificate:
          title: Demo certificate
          requirements:
            - lab: first-lab
        """,
    )
    write(course / "overview.md", "# Overview\n\nHello.\n")
    write(
        course / "modules/01-first/module.yaml",
        """
        slug: first
        title: First module
        summary: The first.
        lessons:
          - {slug: intro, title: Intro, file: intro.md, minutes: 5}
          - {slug: more, title: More, file: more.md}
        quiz: quiz.yaml
        lab: first-lab
        """,
    )
    write(course / "modules/01-first/intro.md", "# Intro\n\n```python\nprint('hi')\n```\n")
    write(course / "modules/01-first/more.md", "More text.\n")
    write(
        course / "modules/01-first/quiz.yaml",
        """
        pass_mark: 50
        questions:
          - id: one
            prompt: Pick B
            choices: [A, B]
            answer: 1
            explanation: Because B.
        """,
    )
    write(
        course / "modules/02-second/module.yaml",
        """
        slug: second
        title: Second module
        lessons:
          - {slug: only, title: Only, file: only.md}
        """,
    )
    write(course / "modules/02-second/only.md", "Only.\n")
    lab = course / "labs/first-lab"
    write(
        lab / "lab.yaml",
        """
        slug: first-lab
        title: First lab
        module: first
        kind: repo
        instructions: instructions.md
        starter: starter
        pass_mark: 50
        stages:
          - {name: run, run: [python, main.py]}
        checks:
          - {name: main.py exits 0, kind: exit_code, stage: run, points: 10, required: true}
        """,
    )
    write(lab / "instructions.md", "Do the thing.\n")
    write(lab / "starter/main.py", "print('hello')\n")
    write(lab / "hidden/secret.txt", "hidden answer\n")
    return root


def test_a_valid_tree_imports_every_object(db, tree):
    report = content_import(tree)
    assert report.created
    course = Course.objects.get(slug="demo")
    assert course.published and course.certificate_title == "Demo certificate"
    assert list(course.modules.values_list("slug", flat=True)) == ["first", "second"]
    assert Lesson.objects.filter(module__course=course).count() == 3
    assert Question.objects.get(key="one").answer == 1
    lab = Lab.objects.get(slug="first-lab")
    assert lab.module.slug == "first" and lab.gradeable
    assert b"hidden answer" not in bytes(lab.starter_zip)
    assert 'class="highlight"' in Lesson.objects.get(slug="intro").body_html


def test_importing_twice_changes_nothing_the_second_time(db, tree):
    content_import(tree)
    second = content_import(tree)
    assert not second.changed
    assert second.unchanged


def test_a_removed_lesson_and_lab_are_unpublished_not_deleted(db, tree):
    content_import(tree)
    module_yaml = tree / "demo/modules/01-first/module.yaml"
    module_yaml.write_text(module_yaml.read_text().replace("  - {slug: more, title: More, file: more.md}\n", ""))
    import shutil

    shutil.rmtree(tree / "demo/labs/first-lab")
    (tree / "demo/modules/01-first/module.yaml").write_text(
        (tree / "demo/modules/01-first/module.yaml").read_text().replace("lab: first-lab\n", "")
    )
    course_yaml = tree / "demo/course.yaml"
    course_yaml.write_text(course_yaml.read_text().replace("        certificate:", "certificate:"))
    text = course_yaml.read_text()
    course_yaml.write_text(text[: text.index("certificate:")])
    report = content_import(tree)
    assert Lesson.objects.get(slug="more").published is False
    assert Lab.objects.get(slug="first-lab").published is False
    assert any("first-lab" in label for label in report.unpublished)


def test_a_script_in_a_lesson_never_reaches_the_html(db, tree):
    (tree / "demo/modules/01-first/more.md").write_text(
        "Hi <script>alert('x')</script> <a href=\"javascript:alert(1)\">x</a> <img src=x onerror=alert(1)>\n"
    )
    content_import(tree)
    html = Lesson.objects.get(slug="more").body_html
    assert "<script" not in html and "javascript:" not in html and "onerror" not in html


def test_every_problem_is_reported_with_file_and_field_and_nothing_is_written(db, tree):
    write(tree / "demo/modules/02-second/module.yaml", "slug: second\ntitle: [unclosed\n")
    write(
        tree / "demo/modules/01-first/quiz.yaml",
        """
        questions:
          - id: one
            prompt: Pick
            choices: [A, B]
            answer: 5
        """,
    )
    lab_yaml = tree / "demo/labs/first-lab/lab.yaml"
    lab_yaml.write_text(lab_yaml.read_text().replace("instructions: instructions.md", "instructions: missing.md"))
    with pytest.raises(ContentError) as caught:
        content_load(tree)
    messages = [str(problem) for problem in caught.value.problems]
    assert any("02-second/module.yaml: line 3, column" in m and "YAML syntax error" in m for m in messages), messages
    assert any("quiz.yaml: questions.0" in m and "answer 5 is not a valid index" in m for m in messages), messages
    assert any("lab.yaml: instructions" in m and "'missing.md' does not exist" in m for m in messages), messages
    with pytest.raises(ContentError):
        content_import(tree)
    assert not Course.objects.exists() and not Module.objects.exists()


def test_a_failed_import_leaves_the_previous_import_untouched(db, tree):
    content_import(tree)
    (tree / "demo/modules/01-first/intro.md").write_text("Changed text\n")
    write(tree / "demo/course.yaml", "slug: demo\ntitle: Demo\n")  # missing required fields
    with pytest.raises(ContentError):
        content_import(tree)
    assert "print" in Lesson.objects.get(slug="intro").body_html


def test_unknown_fields_and_bad_cross_references_are_named(db, tree):
    lab_yaml = tree / "demo/labs/first-lab/lab.yaml"
    lab_yaml.write_text(
        lab_yaml.read_text()
        .replace("module: first", "module: nowhere")
        .replace("pass_mark: 50", "pass_mark: 50\ncolour: red")
    )
    with pytest.raises(ContentError) as caught:
        content_load(tree)
    messages = [str(problem) for problem in caught.value.problems]
    assert any("lab.yaml: colour" in m and "Extra inputs are not permitted" in m for m in messages), messages


def test_the_import_command_prints_problems_and_fails(db, tree, capsys):
    write(tree / "demo/modules/02-second/module.yaml", "slug: Not A Slug\ntitle: x\n")
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_content", str(tree))
    assert "02-second/module.yaml: slug" in capsys.readouterr().err


def test_the_sample_course_imports_cleanly(db):
    from tests.conftest import CONTENT

    content_import(CONTENT)
    course = Course.objects.get(slug="mlops-foundations")
    assert course.published
    assert course.modules.count() == 7
    assert set(Lab.objects.filter(course=course).values_list("slug", flat=True)) == {
        "validate-data",
        "train-model",
        "serve-model",
        "ci-workflow",
        "drift-monitor",
        "audit-trail",
        "capstone",
    }
    assert [r["lab"] for r in course.requirements][-1] == "capstone"


def _with_overlay_variant(tree: Path, remove: str) -> Path:
    """The demo lab with a reference solution and one wrong variant as an overlay."""
    lab = tree / "demo/labs/first-lab"
    write(lab / "hidden/reference/main.py", "print('right')\n")
    write(lab / "hidden/reference/helper.py", "VALUE = 1\n")
    write(lab / "hidden/reference/tests/test_main.py", "def test_it():\n    assert True\n")
    write(lab / "hidden/variants/broken/main.py", "raise SystemExit(1)\n")
    lab_yaml = lab / "lab.yaml"
    lab_yaml.write_text(
        lab_yaml.read_text()
        + "reference: hidden/reference\n"
        + "variants:\n"
        + "  - path: hidden/variants/broken\n"
        + "    expect: failed\n"
        + "    failing: [main.py exits 0]\n"
        + f"    remove: {remove}\n"
    )
    return lab


def test_a_variant_overlay_is_its_reference_with_its_own_files_and_without_the_removed_ones(db, tree, tmp_path):
    _with_overlay_variant(tree, "[tests, helper.py]")
    content_import(tree)
    lab = Lab.objects.get(slug="first-lab")
    hidden = tmp_path / "hidden"
    with tarfile.open(fileobj=io.BytesIO(bytes(lab.hidden_archive)), mode="r:gz") as archive:
        archive.extractall(hidden, filter="data")
    # The archive holds only what differs; the whole variant is built from it.
    assert sorted(p.name for p in (hidden / "variants/broken").rglob("*") if p.is_file()) == ["main.py"]
    variant = lab.parsed_spec.variants[0]
    built = materialise(hidden, lab.parsed_spec, variant, tmp_path / "built")
    files = {p.relative_to(built).as_posix(): p.read_text() for p in built.rglob("*") if p.is_file()}
    assert files == {"main.py": "raise SystemExit(1)\n"}


def test_a_variant_that_removes_what_the_reference_lacks_is_named(db, tree):
    _with_overlay_variant(tree, "[tests/missing.py]")
    with pytest.raises(ContentError) as caught:
        content_load(tree)
    messages = [str(problem) for problem in caught.value.problems]
    expected = REMOVE_NOT_IN_REFERENCE.format(path="tests/missing.py", reference="hidden/reference")
    assert messages == [f"content/demo/labs/first-lab/lab.yaml: variants.0.remove: {expected}"]


def test_a_variant_that_removes_a_file_it_also_provides_or_leaves_the_reference_is_named(db, tree):
    _with_overlay_variant(tree, "[main.py, ../lab.yaml]")
    with pytest.raises(ContentError) as caught:
        content_load(tree)
    messages = [str(problem) for problem in caught.value.problems]
    assert messages == [
        f"content/demo/labs/first-lab/lab.yaml: variants.0.remove: {REMOVE_ALSO_IN_OVERLAY.format(path='main.py')}",
        f"content/demo/labs/first-lab/lab.yaml: variants.0.remove: {REMOVE_BAD_PATH.format(path='../lab.yaml')}",
    ]


def _with_shared_probe(tree: Path, shared: str) -> Path:
    """The demo lab runs a grader script kept once in the course's shared/ folder."""
    write(tree / "demo/shared/grader/probe.py", "print('probing')\n")
    lab_yaml = tree / "demo/labs/first-lab/lab.yaml"
    lab_yaml.write_text(
        lab_yaml.read_text().replace(
            "stages:\n  - {name: run, run: [python, main.py]}\n",
            f"shared: {shared}\n"
            "stages:\n  - {name: run, run: [python, main.py]}\n"
            "  - {name: probe, run: [python, /grader/grader/probe.py], assets: [grader/probe.py], grader: true}\n",
        )
    )
    return lab_yaml


def test_a_shared_grader_script_is_copied_into_the_lab_hidden_archive(db, tree):
    _with_shared_probe(tree, "[grader/probe.py]")
    content_import(tree)
    lab = Lab.objects.get(slug="first-lab")
    with tarfile.open(fileobj=io.BytesIO(bytes(lab.hidden_archive)), mode="r:gz") as archive:
        names = archive.getnames()
        probe = archive.extractfile("grader/probe.py").read()
    assert names == ["grader/probe.py", "secret.txt"]
    assert probe == b"print('probing')\n"


def test_a_shared_script_that_is_missing_or_also_in_the_lab_is_named(db, tree):
    _with_shared_probe(tree, "[grader/probe.py, grader/nothing.py]")
    write(tree / "demo/labs/first-lab/hidden/grader/probe.py", "print('my own')\n")
    with pytest.raises(ContentError) as caught:
        content_load(tree)
    messages = [str(problem) for problem in caught.value.problems]
    assert messages == [
        f"content/demo/labs/first-lab/lab.yaml: shared.0: {SHARED_IN_BOTH.format(path='grader/probe.py')}",
        "content/demo/labs/first-lab/lab.yaml: shared.1: 'grader/nothing.py' does not exist",
    ]
