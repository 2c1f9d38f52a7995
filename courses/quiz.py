"""How a knowledge check is presented: stable choice ids and a per-attempt option order.

A question's choices are stored in the author's order, and authors tend to put the
right answer first. The form therefore never shows that order and never submits a
position: each choice is posted as an id derived from the question and the choice
itself (keyed with the site's secret, so the id does not tell which position it had),
and each attempt shows the choices in its own order, derived from the learner, the
question and the attempt's number. Re-rendering the same attempt gives the same
order; two consecutive attempts never show a question's choices in the same order.
"""

from __future__ import annotations

from math import factorial

from django.utils.crypto import salted_hmac

from .models import Question


def choice_id(question: Question, index: int) -> str:
    """The id a form posts for `question`'s choice at `index` (the author's order).

    It changes when the choice's text, position or question changes, so an answer
    posted against an older version of the question is refused, never misgraded.
    """
    value = f"{question.module_id}:{question.key}:{index}:{question.choices_html[index]}"
    return salted_hmac("courses.quiz.choice", value).hexdigest()[:16]


def choice_index(question: Question, posted: str) -> int | None:
    """The author's index of the choice whose id is `posted`, or None if none has it."""
    for index in range(len(question.choices_html)):
        if choice_id(question, index) == posted:
            return index
    return None


def choice_order(question: Question, *, user_pk: int, attempt_number: int) -> list[int]:
    """The author's indices of `question`'s choices in the order attempt `attempt_number`
    of user `user_pk` shows them.

    The k! orders are walked with a per-learner start and a step in [1, k! - 1], so
    attempt n and attempt n + 1 always differ, and the same attempt always gives the
    same order.
    """
    count = len(question.choices_html)
    orders = factorial(count)
    if orders < 2:
        return list(range(count))
    digest = salted_hmac("courses.quiz.order", f"{user_pk}:{question.module_id}:{question.key}").digest()
    start = int.from_bytes(digest[:8], "big") % orders
    step = 1 + int.from_bytes(digest[8:16], "big") % (orders - 1)
    return permutation(count, (start + attempt_number * step) % orders)


def permutation(count: int, rank: int) -> list[int]:
    """The `rank`-th (0-based, lexicographic) ordering of range(count)."""
    remaining = list(range(count))
    order = []
    for place in range(count, 0, -1):
        block = factorial(place - 1)
        order.append(remaining.pop(rank // block))
        rank %= block
    return order
