"""Where am I: one rule for percent complete and one for "continue"
(courses/progress.py), and every page that shows them agrees."""

from __future__ import annotations

import re

import pytest

from courses.progress import Step, continue_step
from tests.grading.tiny_lab import make_tiny_course, write

LESSON_1, LESSON_2 = "/courses/tiny-course/basics/intro/", "/courses/tiny-course/basics/next/"
QUIZ, LAB = "/courses/tiny-course/basics/quiz/", "/labs/tiny-course/tiny/"


def steps(*done: bool) -> list[Step]:
    return [Step("lesson", f"Step {i}", f"/s{i}/", flag) for i, flag in enumerate(done)]


@pytest.mark.parametrize(
    ("done", "last_url", "expected"),
    [
        ((False, False, False), "", "Step 0"),  # a newcomer starts at the start
        ((True, False, False), "", "Step 1"),
        ((True, False, False), "/s2/", "Step 2"),  # left off at step 2, not done yet
        ((False, True, True), "/s1/", "Step 0"),  # nothing left after it: back to a skipped step
        ((True, True, False), "/elsewhere/", "Step 2"),  # a page that is no step: from the start
        ((True, True, True), "/s1/", None),  # complete
    ],
)
def test_continue_is_the_next_step_not_done_from_where_the_learner_left_off(done, last_url, expected):
    step = continue_step(steps(*done), last_url=last_url)
    assert (step.title if step else None) == expected


@pytest.fixture
def course(db, tmp_path):
    """The tiny course with two lessons, a knowledge check and the tiny lab: four steps."""
    from courses.importer import content_import

    root = make_tiny_course(tmp_path / "content")
    module = root / "tiny-course/modules/basics"
    write(
        module / "module.yaml",
        """
        slug: basics
        title: Basics
        lessons:
          - {slug: intro, title: Intro, file: intro.md}
          - {slug: next, title: Next steps, file: next.md}
        quiz: quiz.yaml
        lab: tiny
        """,
    )
    write(module / "next.md", "Next.\n")
    write(
        module / "quiz.yaml",
        """
        pass_mark: 50
        questions:
          - id: q1
            prompt: Two plus two?
            choices: ["3", "4"]
            answer: 1
            explanation: Arithmetic.
        """,
    )
    content_import(root)


def where(client) -> dict[str, tuple[str, str]]:
    """What the dashboard and the course page each say: (percent, continue)."""
    pages = {"dashboard": client.get("/dashboard/"), "course": client.get("/courses/tiny-course/")}
    said = {}
    for name, response in pages.items():
        html = response.content.decode()
        percent = re.search(r"<strong>(?:Your progress: )?(\d+)%", html)[1]
        button = re.search(r'<a class="button" href="([^"]+)">Continue where you left off: ([^<]+)</a>', html)
        complete = "course-complete" in html
        said[name] = (percent, (button[1], button[2]) if button else ("complete" if complete else None))
    return said


def agreed(client) -> tuple[str, object]:
    said = where(client)
    assert said["dashboard"] == said["course"], said
    return said["course"]


def pass_the_lab(learner) -> None:
    from grading.models import Submission
    from labs.models import Lab

    Submission.objects.create(
        user=learner,
        lab=Lab.objects.get(slug="tiny"),
        source_kind="archive",
        snapshot_path="x.tar.gz",
        snapshot_sha256="0" * 64,
        status="passed",
        score=100,
        max_score=100,
    )


def pass_the_knowledge_check(learner) -> None:
    # Stored as the quiz page stores a passing attempt (the page's answer order is its own business).
    from courses.models import Module, QuizAttempt

    QuizAttempt.objects.create(
        user=learner, module=Module.objects.get(slug="basics"), answers={}, correct=1, total=1, passed=True
    )


def test_the_dashboard_and_the_course_page_agree_at_every_step(learner_client, learner, course):
    learner_client.post("/courses/tiny-course/enroll/")
    assert agreed(learner_client) == ("0", (LESSON_1, "Intro"))
    learner_client.post(LESSON_1)  # read, and on to the next lesson
    learner_client.get(LESSON_2)
    assert agreed(learner_client) == ("25", (LESSON_2, "Next steps"))
    # Jumping ahead to the lab: "continue" follows the learner there...
    learner_client.get(LAB)
    assert agreed(learner_client) == ("25", (LAB, "Lab: Tiny lab"))
    # ...and once it is passed, goes back to what was skipped.
    pass_the_lab(learner)
    assert agreed(learner_client) == ("50", (LESSON_2, "Next steps"))
    learner_client.post(LESSON_2)  # the last lesson leads to the knowledge check
    learner_client.get(QUIZ)
    assert agreed(learner_client) == ("75", (QUIZ, "Knowledge check: Basics"))
    pass_the_knowledge_check(learner)
    assert agreed(learner_client) == ("100", "complete")


def test_a_lesson_a_knowledge_check_and_a_lab_each_count_as_one_step(learner_client, learner, course):
    learner_client.post("/courses/tiny-course/enroll/")
    pass_the_lab(learner)
    assert agreed(learner_client)[0] == "25"
    pass_the_knowledge_check(learner)
    assert agreed(learner_client)[0] == "50"
    module = learner_client.get("/courses/tiny-course/basics/").content.decode()
    assert "Module progress: 50%" in module


def test_the_module_page_marks_lessons_read_and_the_check_and_lab_passed(learner_client, learner, course):
    learner_client.post("/courses/tiny-course/enroll/")
    module = learner_client.get("/courses/tiny-course/basics/").content.decode()
    assert "Read</span>" not in module and "Take the knowledge check" in module
    learner_client.post(LESSON_1)
    pass_the_knowledge_check(learner)
    pass_the_lab(learner)
    module = learner_client.get("/courses/tiny-course/basics/").content.decode()
    lessons = re.findall(
        r'<li><a href="([^"]+)">[^<]+</a> <span class="muted">\d+ min</span>( <span class="tag tag-ok">Read</span>)?',
        module,
    )
    assert lessons == [(LESSON_1, ' <span class="tag tag-ok">Read</span>'), (LESSON_2, "")]
    assert "knowledge check passed" in module and "lab passed" in module
    assert re.search(r'<span class="tag tag-ok">Passed</span> <a href="[^"]+/quiz/">Take it again</a>', module)
    assert re.search(r'>Tiny lab</a> <span class="tag tag-ok">Passed</span>', module)
