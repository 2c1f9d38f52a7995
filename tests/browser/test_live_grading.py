"""The submission page while a real worker grades: the stage counter and the bar
move, the verdict is swapped in without a reload and told to screen readers once.
At desktop and at phone size, through the web form, with Redis, Docker and Chromium."""

from __future__ import annotations

import re
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.browser.conftest import log_in
from tests.grading.tiny_lab import make_tiny_course, write

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Two learner stages that each take a few seconds, so a page polling every second
# sees both of them (the tiny lab's own stage finishes before the first poll).
SLOW_STAGES = """\
  - {name: prepare, run: [python, prepare.py], time_s: 20}
  - {name: run, run: [python, main.py], time_s: 20, needs: [prepare]}
"""
PREPARE = """
import time
time.sleep(5)
print("prepared")
"""
MAIN = """
import json, time
time.sleep(5)
rows = json.load(open("data/input.json"))
json.dump({"accuracy": 1.0, "predictions": rows}, open("out.json", "w"))
"""

# Installed once the page has loaded: records what the learner would see change
# (each stage line, each bar value) and every text change inside a live region.
WATCH = """
() => {
  window.__loadedOnce = "still the same page";
  window.__stages = [];
  window.__bars = [];
  window.__announced = [];
  const seen = () => {
    const line = document.querySelector("#submission-status .stage-counter");
    if (line) {
      const text = line.innerText.replace(/\\s+/g, " ").trim();
      if (window.__stages[window.__stages.length - 1] !== text) window.__stages.push(text);
    }
    const bar = document.querySelector("#submission-status progress");
    if (bar && window.__bars[window.__bars.length - 1] !== bar.value) window.__bars.push(bar.value);
  };
  const live = (node) => {
    const element = node.nodeType === 1 ? node : node.parentElement;
    return element && element.closest('[aria-live], [role="status"], [role="alert"], [role="log"]');
  };
  const said = new Map();
  new MutationObserver((mutations) => {
    for (const region of new Set(mutations.map((m) => live(m.target)).filter(Boolean))) {
      const text = region.textContent.trim();
      if (text && said.get(region) !== text) window.__announced.push(text);
      said.set(region, text);
    }
    seen();
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
  seen();
}
"""

STAGE_LINE = re.compile(r"^Running stage (\d+) of (\d+): (\w+) \((\d+) s of (\d+) s\)$")
PREPARING = "Running Preparing the sandbox"


@pytest.fixture
def slow_lab(transactional_db, tmp_path):
    from courses.importer import content_import
    from labs.models import Lab

    root = make_tiny_course(tmp_path / "content")
    lab_yaml = root / "tiny-course/labs/tiny/lab.yaml"
    text = lab_yaml.read_text()
    lab_yaml.write_text(text.replace("  - {name: run, run: [python, main.py], time_s: 10}\n", SLOW_STAGES))
    content_import(root)
    return Lab.objects.get(slug="tiny")


def slow_solution(tmp_path: Path) -> Path:
    folder = tmp_path / "slow"
    write(folder / "prepare.py", PREPARE)
    write(folder / "main.py", MAIN)
    path = tmp_path / "slow.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("prepare.py", "main.py"):
            archive.writestr(name, textwrap.dedent((folder / name).read_text()))
    return path


@pytest.mark.parametrize("size", ["page", "phone"])
def test_the_page_counts_stages_moves_the_bar_and_swaps_in_the_verdict_once(
    size, request, live_server, slow_lab, learner, worker, tmp_path
):
    page = request.getfixturevalue(size)
    log_in(page, live_server, learner)
    page.goto(live_server.url + "/courses/tiny-course/")
    page.get_by_role("button", name="Enroll in this course").click()
    page.goto(live_server.url + "/labs/tiny-course/tiny/")
    page.get_by_label("Upload").set_input_files(str(slow_solution(tmp_path)))
    page.get_by_role("button", name="Submit for grading").click()
    assert "/submissions/" in page.url
    page.evaluate(WATCH)

    page.locator(".verdict").wait_for(timeout=180_000)
    assert "Passed" in page.locator(".verdict").inner_text()

    # Never reloaded: what the page set on `window` after loading is still there.
    assert page.evaluate("window.__loadedOnce") == "still the same page"
    stage_lines = [text for text in page.evaluate("window.__stages") if text != PREPARING]
    stages = [STAGE_LINE.match(text) for text in stage_lines]
    assert all(stages), f"a stage line not of the form 'stage N of M: name (x s of limit s)': {stage_lines}"
    seen = {(int(m[1]), m[3]) for m in stages}
    assert {(1, "prepare"), (2, "run")} <= seen, stage_lines
    assert all(int(m[1]) >= 1 and int(m[2]) == 3 and int(m[4]) <= int(m[5]) == 20 for m in stages), stage_lines
    # The bar only moves forward, and it moved.
    bars = page.evaluate("window.__bars")
    assert bars == sorted(bars) and len(set(bars)) >= 2, bars

    # One announcement: the verdict (the stage lines above were not read out).
    announced = page.evaluate("window.__announced")
    assert len(announced) == 1 and announced[0].startswith("Grading finished: Passed"), announced
    assert page.locator("#grading-announcement").inner_text().startswith("Grading finished: Passed")
    # The checks and stage logs came with the verdict.
    assert page.get_by_role("heading", name="Checks").is_visible()
    assert "prepared" in page.content()
