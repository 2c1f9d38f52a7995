"""Reading rendered HTML in tests with Django's own parser (django.test.html)."""

from __future__ import annotations

from django.test.html import Element


def elements(node: Element, test) -> list[Element]:
    """Every element below `node`, in document order, for which `test` is true."""
    found = []
    for child in node.children:
        if isinstance(child, Element):
            if test(child):
                found.append(child)
            found.extend(elements(child, test))
    return found


def attr(node: Element, name: str) -> str:
    return dict(node.attributes).get(name) or ""
