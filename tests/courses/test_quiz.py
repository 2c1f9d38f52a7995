"""Knowledge checks: feedback that explains without giving the answers away, and
choices shown in a new order on each attempt, graded by what was chosen."""

from __future__ import annotations

from itertools import permutations

import pytest
from django.test.html import Element, parse_html

from courses.models import QuizAttempt
from courses.quiz import choice_order, permutation
from courses.views import QUIZ_INCOMPLETE
from tests.factories import CourseFactory, ModuleFactory
from tests.html import attr, elements

URL = "/courses/demo/checks/quiz/"

# question key -> (choices, index of the right one); the right answer is first,
# as authors tend to write it, so an unshuffled form would give it away.
QUESTIONS = {
    "split": (["Split before fitting", "Fit then split", "Never split", "Split twice"], 0),
    "seed": (["Pass random_state", "Seed once globally", "Use time as seed", "Do not seed"], 0),
    "pickle": (["It runs code on load", "It is slow", "It is large", "It is binary"], 0),
    "yesno": (["Yes", "No"], 0),
}


@pytest.fixture
def module(db):
    course = CourseFactory(slug="demo", title="Demo course")
    module = ModuleFactory(course=course, slug="checks", title="Checks", quiz_pass_mark=75)
    for order, (key, (choices, answer)) in enumerate(QUESTIONS.items()):
        module.questions.create(
            key=key,
            order=order,
            prompt_html=f"<p>Prompt {key}?</p>",
            choices_html=[f"<p>{text}</p>" for text in choices],
            answer=answer,
            explanation_html=f"<p>Because of {key}.</p>",
        )
    return module


@pytest.fixture
def enrolled(learner_client, module):
    learner_client.post("/courses/demo/enroll/")
    return learner_client


def _text(node: Element | str) -> str:
    if isinstance(node, str):
        return node
    return " ".join(_text(child) for child in node.children).strip()


def form_choices(html: str) -> dict[str, list[tuple[str, str]]]:
    """question key -> [(posted id, choice text)] in the order the form shows them."""
    shown: dict[str, list[tuple[str, str]]] = {}
    for label in elements(parse_html(html), lambda e: e.name == "label" and "choice" in attr(e, "class")):
        radio = elements(label, lambda e: e.name == "input")[0]
        key = attr(radio, "name").removeprefix("q-")
        shown.setdefault(key, []).append((attr(radio, "value"), _text(label.children[-1])))
    return shown


def result_choices(html: str) -> dict[str, list[tuple[str, str, str]]]:
    """question key -> [(classes, choice text, its tag)] of an attempt's result page, in the shown order."""
    shown = {}
    for section in elements(parse_html(html), lambda e: e.name == "section" and "quiz-feedback" in attr(e, "class")):
        key = attr(section, "id").removeprefix("question-")
        items = elements(section, lambda e: e.name == "li")
        shown[key] = [
            (attr(item, "class"), _text(item.children[0]), _text(item)[len(_text(item.children[0])) :].strip())
            for item in items
        ]
    return shown


def texts(choices) -> list[str]:
    return [choice[1] for choice in choices]


def answer(client, picks: dict[str, str]):
    """Submit the form as a learner would: by clicking the choice with this text."""
    page = client.get(URL).content.decode()
    shown = form_choices(page)
    data = {"attempt": attr(elements(parse_html(page), lambda e: attr(e, "name") == "attempt")[0], "value")}
    for key, text in picks.items():
        data[f"q-{key}"] = next(cid for cid, label in shown[key] if label == text)
    return client.post(URL, data, follow=True)


RIGHT = {key: choices[answer] for key, (choices, answer) in QUESTIONS.items()}
TWO_WRONG = {**RIGHT, "seed": "Do not seed", "yesno": "No"}


def test_a_failed_attempt_marks_the_wrong_answers_and_explains_without_revealing_the_right_ones(enrolled, module):
    response = answer(enrolled, TWO_WRONG)
    assert response.redirect_chain[-1][0].startswith("/courses/demo/checks/quiz/attempts/")
    page = response.content.decode()
    assert "You answered 2 of 4 correctly (50%)" in page and "Not passed" in page
    shown = result_choices(page)
    for key in ("seed", "yesno"):
        (chosen,) = [choice for choice in shown[key] if choice[2]]
        assert chosen[1] == TWO_WRONG[key] and chosen[2] == "Your answer: not this one" and "wrong" in chosen[0]
        right = next(choice for choice in shown[key] if choice[1] == RIGHT[key])
        assert "correct" not in right[0] and "chosen" not in right[0] and right[2] == ""
    assert "The right answer" not in page
    # Every question explains why, the wrong ones included.
    for key in QUESTIONS:
        assert f"Because of {key}." in page
    # The summary points at the questions to revisit, by their place on the page.
    summary = _text(elements(parse_html(page), lambda e: attr(e, "id") == "quiz-result")[0])
    assert "question 2" in summary and "question 4" in summary and "question 1" not in summary


def test_the_next_form_after_a_failure_prefills_nothing_and_marks_nothing(enrolled, module):
    answer(enrolled, TWO_WRONG)
    page = enrolled.get(URL).content.decode()
    assert "checked" not in page
    assert "correct" not in page.replace("correctly", "")
    assert "Feedback on your last attempt" in page


def test_a_passed_attempt_shows_the_right_answer_of_a_question_it_got_wrong(enrolled, module):
    response = answer(enrolled, {**RIGHT, "yesno": "No"})
    page = response.content.decode()
    assert "You answered 3 of 4 correctly (75%)" in page and "Passed" in page
    shown = result_choices(page)
    assert ("choice correct", "Yes", "The right answer") in shown["yesno"]
    assert ("choice chosen wrong", "No", "Your answer: not this one") in shown["yesno"]


def test_the_order_is_stable_within_an_attempt_and_changes_with_the_next(enrolled, module):
    first = form_choices(enrolled.get(URL).content.decode())
    assert form_choices(enrolled.get(URL).content.decode()) == first  # a reload
    result = answer(enrolled, TWO_WRONG).content.decode()
    # The result shows the choices in the order the attempt was answered in, and again on reload.
    assert {key: texts(choices) for key, choices in result_choices(result).items()} == {
        key: texts(choices) for key, choices in first.items()
    }
    attempt = QuizAttempt.objects.get()
    again = enrolled.get(f"/courses/demo/checks/quiz/attempts/{attempt.pk}/").content.decode()
    assert result_choices(again) == result_choices(result)
    second = form_choices(enrolled.get(URL).content.decode())
    for key in QUESTIONS:
        assert texts(second[key]) != texts(first[key]), key
        assert sorted(texts(second[key])) == sorted(texts(first[key]))
        # The ids are the choices', not the positions': the same choice keeps its id.
        assert dict((text, cid) for cid, text in second[key]) == dict((text, cid) for cid, text in first[key])


def test_grading_follows_the_chosen_choice_whatever_its_position(enrolled, learner, module):
    for _ in range(3):
        response = answer(enrolled, RIGHT)
        assert "You answered 4 of 4 correctly" in response.content.decode()
    assert list(QuizAttempt.objects.filter(user=learner).order_by("number").values_list("number", "passed")) == [
        (1, True),
        (2, True),
        (3, True),
    ]
    stored = QuizAttempt.objects.filter(user=learner).first().answers
    assert stored == {key: index for key, (_, index) in QUESTIONS.items()}


def test_a_posted_position_is_not_an_answer(enrolled, module):
    response = enrolled.post(URL, {f"q-{key}": "0" for key in QUESTIONS})
    assert response.status_code == 400
    page = response.content.decode()
    assert QUIZ_INCOMPLETE in page and "Choose an answer." in page
    assert not QuizAttempt.objects.exists()


def test_a_form_sent_back_for_a_missing_answer_keeps_its_order_and_the_answers_given(enrolled, module):
    shown = form_choices(enrolled.get(URL).content.decode())
    picked = shown["split"][2][0]
    response = enrolled.post(URL, {"attempt": "1", "q-split": picked})
    assert response.status_code == 400
    page = response.content.decode()
    assert form_choices(page) == shown
    checked = elements(parse_html(page), lambda e: e.name == "input" and "checked" in dict(e.attributes))
    assert [attr(e, "value") for e in checked] == [picked]


def test_an_answer_to_a_question_changed_since_the_form_was_shown_is_refused(enrolled, module):
    page = enrolled.get(URL).content.decode()
    data = {f"q-{key}": choices[0][0] for key, choices in form_choices(page).items()}
    question = module.questions.get(key="split")
    question.choices_html = list(reversed(question.choices_html))
    question.save()
    response = enrolled.post(URL, data)
    assert response.status_code == 400 and not QuizAttempt.objects.exists()


def test_a_form_left_open_from_an_earlier_attempt_keeps_its_order(enrolled, module):
    stale = enrolled.get(URL).content.decode()
    answer(enrolled, TWO_WRONG)
    shown = form_choices(stale)
    data = {"attempt": "1"} | {f"q-{key}": choices[-1][0] for key, choices in shown.items()}
    response = enrolled.post(URL, data, follow=True)
    attempt = QuizAttempt.objects.order_by("-pk").first()
    assert attempt.number == 1
    result = result_choices(response.content.decode())
    assert {key: texts(c) for key, c in result.items()} == {key: texts(c) for key, c in shown.items()}


@pytest.mark.parametrize("posted", ["²", "0", "99", "9" * 5000, "-1", ""])
def test_a_nonsense_attempt_number_is_taken_as_the_next_attempt(enrolled, module, posted):
    shown = form_choices(enrolled.get(URL).content.decode())
    data = {"attempt": posted} | {f"q-{key}": choices[0][0] for key, choices in shown.items()}
    response = enrolled.post(URL, data)
    assert response.status_code == 302
    assert QuizAttempt.objects.get().number == 1


def test_nobody_else_sees_my_attempt(enrolled, learner, module, client, other_learner):
    answer(enrolled, TWO_WRONG)
    attempt = QuizAttempt.objects.get(user=learner)
    url = f"/courses/demo/checks/quiz/attempts/{attempt.pk}/"
    client.force_login(other_learner)
    client.post("/courses/demo/enroll/")
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302  # to the login page


@pytest.mark.parametrize("count", [1, 2, 3, 4, 6])
def test_permutation_ranks_enumerate_every_order_once(count):
    orders = [tuple(permutation(count, rank)) for rank in range(len(list(permutations(range(count)))))]
    assert sorted(orders) == sorted(permutations(range(count)))


@pytest.mark.parametrize("count", [2, 3, 4, 6])
def test_consecutive_attempts_never_repeat_an_order(db, count):
    module = ModuleFactory(quiz_pass_mark=50)
    question = module.questions.create(key="q", prompt_html="", choices_html=[str(i) for i in range(count)], answer=0)
    for user_pk in (1, 2, 97):
        orders = [choice_order(question, user_pk=user_pk, attempt_number=n) for n in range(1, 40)]
        assert all(sorted(order) == list(range(count)) for order in orders)
        assert all(a != b for a, b in zip(orders, orders[1:], strict=False))
        assert choice_order(question, user_pk=user_pk, attempt_number=5) == orders[4]
