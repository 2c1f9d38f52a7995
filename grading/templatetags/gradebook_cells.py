"""The gradebook's cells, rendered in Python: a page has 100 rows of up to a dozen
cells, and a dozen template nodes per cell made rendering most of the page's time
(bench/gradebook_page.py). Everything is escaped by format_html."""

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..gradebook import Cell

register = template.Library()


def _parts(cell: Cell) -> tuple:
    percent = "" if cell.best_percent is None else f"{cell.best_percent:.0f}%"
    attempts = (
        format_html('<span class="attempts">{} attempt{}</span>', cell.attempts, "" if cell.attempts == 1 else "s")
        if cell.attempts
        else ""
    )
    return (
        cell.status.value,
        cell.status.value,
        cell.status.label,
        cell.status.symbol,
        percent,
        cell.status.label,
        attempts,
    )


@register.simple_tag
def gradebook_cells(cells: list[Cell]) -> SafeString:
    """One <td> per lab: status as a class (colour), a symbol and a word (for screen
    readers and the tooltip), the best percentage and the number of attempts."""
    return format_html_join(
        "",
        '<td class="cell cell-{}" data-status="{}" title="{}"><span aria-hidden="true">{}</span> {}'
        '<span class="visually-hidden">{}</span>{}</td>',
        (_parts(cell) for cell in cells),
    )
