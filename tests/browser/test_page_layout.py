"""Every page a learner, an employer or an instructor opens, in Chromium: on a phone
(390 x 844) nothing scrolls sideways and the columns that matter stay readable; on a
desktop the lab page puts the learner's own work first and grades as lab.yaml says."""

from __future__ import annotations

import re

import pytest
import yaml
from django.utils import timezone

from tests.browser.conftest import log_in
from tests.conftest import CONTENT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE_WIDTH = 390
# A feedback column narrower than this shows a few characters per line (it showed
# about 5 before the phone layout).
MIN_FEEDBACK_PX = 250
FEEDBACK_LINE = "AssertionError: expected the workflow to run pytest in a step of its own job"
LONG_LOG = "\n".join(f"step {i}: " + "x" * 180 for i in range(60))

# WCAG 2.x relative luminance and contrast ratio of two computed CSS colours.
CONTRAST_JS = """([fg, bg]) => {
  const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = (c) => {
    const [r, g, b] = rgb(c).map((v) => {
      v = v / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


def finished_submission(user, lab, *, status, checks=(), stages=()):
    from grading.models import CheckResult, StageRun, Submission

    now = timezone.now()
    submission = Submission.objects.create(
        user=user,
        lab=lab,
        source_kind="archive",
        source_name="my-repository-with-a-rather-long-name.zip",
        snapshot_path="x.tar.gz",
        snapshot_sha256="a" * 64,
        status=status,
        score=0.0 if status == "error" else 55.0,
        max_score=100.0,
        lab_hash=lab.content_hash,
        started_at=now,
        finished_at=now,
        error_message="The grading worker could not reach Docker." if status == "error" else "",
    )
    for order, (name, check_status, output) in enumerate(checks):
        CheckResult.objects.create(
            submission=submission,
            order=order,
            name=name,
            status=check_status,
            score=0,
            max_score=10,
            required=True,
            output=output,
            hint_html="<p>Run <code>python -m pytest -q</code> from the repository root.</p>",
        )
    for order, (name, output) in enumerate(stages):
        StageRun.objects.create(
            submission=submission,
            order=order,
            name=name,
            command="python -m pytest -q",
            status="ran",
            exit_code=1,
            duration_s=3.2,
            time_limit_s=300,
            memory_limit_mb=1024,
            output=output,
            summary="exit code 1",
        )
    return submission


@pytest.fixture
def journey(transactional_db, learner, instructor, tmp_path):
    """The sample course with an enrolled learner who has a graded (failed) attempt with
    long feedback and logs, a platform error, and a public certificate (tiny course)."""
    from certificates import services as certificates
    from courses.importer import content_import
    from courses.models import Course
    from courses.services import enrollment_create
    from grading.models import Submission
    from tests.certificates.test_issuing_and_verify_page import pass_lab
    from tests.grading.tiny_lab import make_tiny_course

    content_import(CONTENT)
    content_import(make_tiny_course(tmp_path / "content"))
    course = Course.objects.get(slug="mlops-foundations")
    tiny = Course.objects.get(slug="tiny-course")
    for each in (course, tiny):
        enrollment_create(user=learner, course=each)
    lab = course.labs.get(slug="ci-workflow")
    failed = finished_submission(
        learner,
        lab,
        status=Submission.Status.FAILED,
        checks=[
            ("a workflow step runs pytest", "failed", FEEDBACK_LINE + "\n" + LONG_LOG),
            ("coverage of Python files outside tests/ >= 60%", "skipped", "Skipped: the tests did not pass."),
        ],
        stages=[("tests", LONG_LOG)],
    )
    errored = finished_submission(learner, lab, status=Submission.Status.ERROR)
    pass_lab(learner, tiny)
    certificate = certificates.certificate_award_if_complete(user=learner, course=tiny)
    return {"course": course, "lab": lab, "failed": failed, "errored": errored, "certificate": certificate}


def learner_pages(journey) -> list[str]:
    course = journey["course"]
    urls = ["/", course.get_absolute_url(), "/dashboard/", "/profile/"]
    for module in course.modules.filter(published=True):
        urls.append(module.get_absolute_url())
        urls.extend(lesson.get_absolute_url() for lesson in module.lessons.filter(published=True))
        if module.questions.filter(published=True).exists():
            urls.append(module.get_absolute_url() + "quiz/")
    urls.extend(lab.get_absolute_url() for lab in course.labs.filter(published=True))
    urls.append(journey["failed"].get_absolute_url())
    urls.append(journey["errored"].get_absolute_url())
    return urls


def sideways_overflow(page) -> int:
    """How many pixels the page is wider than the phone (0 when it fits). A mobile
    browser zooms out to show a page that is too wide, widening innerWidth with it,
    so both are compared with the phone's own width."""
    return page.evaluate(f"Math.max(document.documentElement.scrollWidth, window.innerWidth) - {PHONE_WIDTH}")


def test_no_page_scrolls_sideways_on_a_phone(phone, browser, live_server, journey, learner, instructor):
    wide = {}
    log_in(phone, live_server, learner)
    for url in learner_pages(journey):
        response = phone.goto(live_server.url + url)
        assert response.status == 200, url
        if (overflow := sideways_overflow(phone)) > 0:
            wide[url] = overflow
    # The employer has no account.
    employer = browser.new_context(viewport={"width": PHONE_WIDTH, "height": 844}, is_mobile=True).new_page()
    employer.goto(live_server.url + journey["certificate"].get_absolute_url())
    assert "Valid certificate" in employer.locator("#status-banner").inner_text()
    if (overflow := sideways_overflow(employer)) > 0:
        wide["verify"] = overflow
    employer.context.close()
    # The instructor's list of every submission of a lab.
    log_in(phone, live_server, instructor)
    lab = journey["lab"]
    for url in (f"/instructor/labs/{lab.course.slug}/{lab.slug}/submissions/", journey["failed"].get_absolute_url()):
        phone.goto(live_server.url + url)
        if (overflow := sideways_overflow(phone)) > 0:
            wide[url] = overflow
    assert not wide, f"pages wider than a {PHONE_WIDTH} px phone (px too wide): {wide}"


def fully_on_screen(locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE_WIDTH and box["width"] > 0


def test_the_dashboard_shows_each_modules_lab_and_progress_on_a_phone(phone, live_server, journey, learner):
    log_in(phone, live_server, learner)
    phone.goto(live_server.url + "/dashboard/")
    lab_link = phone.get_by_role("link", name=journey["lab"].title)
    assert lab_link.is_visible() and fully_on_screen(lab_link)
    module = journey["lab"].module
    progress = phone.get_by_role("progressbar", name=module.title)
    assert progress.is_visible() and fully_on_screen(progress)
    assert progress.bounding_box()["width"] >= 80  # a bar, not a sliver


def test_submission_feedback_and_logs_are_readable_on_a_phone(phone, live_server, journey, learner):
    log_in(phone, live_server, learner)
    phone.goto(live_server.url + journey["failed"].get_absolute_url())
    feedback = phone.locator("pre", has_text=FEEDBACK_LINE).first
    assert feedback.is_visible()
    width = feedback.bounding_box()["width"]
    assert width >= MIN_FEEDBACK_PX, f"the feedback column is {width:.0f} px wide"
    assert fully_on_screen(feedback)
    # Long lines wrap or scroll inside their own box, never the page.
    assert sideways_overflow(phone) <= 0


def grading_tables(page) -> list[list[list[str]]]:
    """Rows of every table on the page whose header starts Check | Points | Required."""
    return page.evaluate(
        """() => [...document.querySelectorAll('table')]
        .filter((t) => [...t.querySelectorAll('thead th')].slice(0, 3).map((th) => th.innerText.trim().toLowerCase())
                       .join('|') === 'check|points|required')
        .map((t) => [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.cells].map((td) => td.innerText.trim())))"""
    )


def test_the_lab_page_puts_attempts_and_the_form_before_the_instructions(page, live_server, journey, learner):
    log_in(page, live_server, learner)
    page.goto(live_server.url + journey["lab"].get_absolute_url())
    attempts = page.get_by_role("heading", name="Your attempts").bounding_box()["y"]
    form = page.get_by_role("button", name="Submit for grading").bounding_box()["y"]
    instructions = page.get_by_role("heading", name="What your repository must contain").bounding_box()["y"]
    assert attempts < instructions and form < instructions


@pytest.mark.parametrize("slug", ["ci-workflow", "capstone", "validate-data", "train-model"])
def test_the_lab_page_shows_one_grading_table_equal_to_lab_yaml(page, live_server, journey, learner, slug):
    spec = yaml.safe_load((CONTENT / "mlops-foundations" / "labs" / slug / "lab.yaml").read_text())
    expected = [[c["name"], str(c["points"]), "Yes" if c.get("required") else "—"] for c in spec["checks"]]
    log_in(page, live_server, learner)
    page.goto(live_server.url + f"/labs/mlops-foundations/{slug}/")
    tables = grading_tables(page)
    assert len(tables) == 1, f"{len(tables)} grading tables"
    assert tables[0] == expected
    assert f"Pass mark: {spec['pass_mark']}%" in page.content()


def test_fenced_code_inside_a_list_renders_as_code(page, live_server, journey, learner):
    log_in(page, live_server, learner)
    page.goto(live_server.url + journey["lab"].get_absolute_url())
    code = page.locator("article li pre code", has_text="runs-on: ubuntu-latest")
    assert code.count() == 1 and code.is_visible()
    assert "```" not in page.locator("article").inner_text()


@pytest.mark.parametrize(
    ("slug", "names", "never"),
    [("ci-workflow", [".zip", ".tar.gz"], [".ipynb", "notebook"]), ("validate-data", [".ipynb"], [".zip", ".tar.gz"])],
)
def test_the_upload_help_names_only_what_the_lab_accepts(page, live_server, journey, learner, slug, names, never):
    log_in(page, live_server, learner)
    page.goto(live_server.url + f"/labs/mlops-foundations/{slug}/")
    help_text = page.locator("#submit-heading + form .helptext, section[aria-labelledby=submit-heading] .helptext")
    text = help_text.first.inner_text()
    assert all(name in text for name in names), text
    assert not any(name in text for name in never), text


def test_the_site_has_a_favicon(page, live_server, journey):
    page.goto(live_server.url + "/")
    href = page.locator("link[rel=icon]").get_attribute("href")
    response = page.request.get(live_server.url + href)
    assert response.status == 200 and response.headers["content-type"].startswith("image/")


def badge_colours(page, text: str) -> dict:
    badge = page.locator(".tag", has_text=re.compile(f"^{text}$")).first
    return badge.evaluate(
        """(el) => { const s = getComputedStyle(el);
           return {fg: s.color, bg: s.backgroundColor, border: s.borderStyle + ' ' + s.borderColor}; }"""
    )


def test_skipped_and_platform_error_badges_are_legible_and_distinct(page, live_server, journey, learner):
    log_in(page, live_server, learner)
    page.goto(live_server.url + journey["failed"].get_absolute_url())
    skipped = badge_colours(page, "Skipped")
    page.goto(live_server.url + journey["errored"].get_absolute_url())
    error = badge_colours(page, "Platform error")
    for name, colours in (("Skipped", skipped), ("Platform error", error)):
        ratio = page.evaluate(CONTRAST_JS, [colours["fg"], colours["bg"]])
        assert ratio >= 4.5, f"{name} badge contrast {ratio:.2f}:1 is below WCAG AA"
    assert skipped["bg"] != error["bg"] and skipped["fg"] != error["fg"]
    # Not only the hue differs (colour-blind readers): the two backgrounds differ in
    # lightness or the badges differ in outline.
    assert skipped["border"] != error["border"]


def test_the_already_being_graded_message_links_to_that_submission(page, live_server, journey, learner, tmp_path):
    from grading.models import Submission
    from tests.browser.test_grading_and_certificates import zip_solution

    running = finished_submission(learner, journey["lab"], status=Submission.Status.RUNNING)
    log_in(page, live_server, learner)
    page.goto(live_server.url + journey["lab"].get_absolute_url())
    page.get_by_label("Upload").set_input_files(str(zip_solution(tmp_path, "correct")))
    page.get_by_role("button", name="Submit for grading").click()
    message = page.locator(".message", has_text="You already have a submission being graded")
    link = message.get_by_role("link")
    assert link.get_attribute("href") == running.get_absolute_url()
    link.click()
    assert page.url == live_server.url + running.get_absolute_url()


def test_the_course_page_has_exactly_one_h1(page, live_server, journey, learner):
    page.goto(live_server.url + journey["course"].get_absolute_url())
    assert page.locator("h1").count() == 1
    log_in(page, live_server, learner)
    page.reload()
    assert page.locator("h1").count() == 1
    assert page.locator("h1").inner_text() == journey["course"].title


def test_every_quiz_choice_keeps_a_full_size_radio_button_on_a_phone(phone, live_server, journey, learner):
    log_in(phone, live_server, learner)
    phone.goto(live_server.url + "/courses/mlops-foundations/data-validation/quiz/")
    widths = phone.locator("input[type=radio]").evaluate_all(
        "(els) => els.map((el) => el.getBoundingClientRect().width)"
    )
    assert widths and min(widths) >= 12 and max(widths) - min(widths) < 1, widths
