"""Markdown rendering of lessons and lab instructions (courses/markdown.py)."""

from __future__ import annotations

import re

import pytest

from courses.markdown import render

FENCE_IN_LIST = """\
1. Write the workflow:

    ```yaml
    on: [push]
    ```

2. Push it.
"""

FENCE_IN_ADMONITION = """\
!!! tip "Build the schema"
    Derive it once:

    ```python
    SCHEMA = {"target": "int"}
    ```
"""

TOP_LEVEL_FENCE = """\
```bash
python train.py
```
"""


@pytest.mark.parametrize(
    ("text", "container", "code"),
    [
        (FENCE_IN_LIST, "li", "on: [push]"),
        (FENCE_IN_ADMONITION, 'div class="admonition tip"', "SCHEMA"),
        (TOP_LEVEL_FENCE, None, "python train.py"),
    ],
)
def test_fenced_code_renders_as_code_wherever_it_is(text, container, code):
    html = render(text)
    assert "```" not in html
    block = re.search(r"<pre>.*?<code>(.*?)</code></pre>", html, re.S)
    assert block is not None and code in re.sub(r"<[^>]+>", "", block.group(1)).replace("&quot;", '"')
    if container:
        assert html.index(f"<{container}") < block.start()


def test_a_list_with_a_fence_keeps_its_numbering():
    html = render(FENCE_IN_LIST)
    assert html.count("<ol>") == 1 and html.count("<li>") == 2


def test_no_fence_in_the_sample_course_is_indented_one_to_three_spaces():
    """Such a fence is outside the list item above it (Python-Markdown nests at 4
    spaces): the list ends there and its numbering restarts after the code."""
    from tests.conftest import CONTENT

    misplaced = [
        f"{path.relative_to(CONTENT)}:{number}"
        for path in sorted(CONTENT.rglob("*.md"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.match(r" {1,3}(```|~~~)", line)
    ]
    assert not misplaced
