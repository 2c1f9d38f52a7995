"""A printable certificate: one A4 landscape page with a QR code to the verify page.

The PDF is a convenience copy; the signed credential is what proves anything. Text
uses DejaVu Sans (Debian package `fonts-dejavu-core`) so that names outside Latin-1
render; without it, the PDF falls back to a core font with names transliterated.
No Django imports.
"""

from __future__ import annotations

import io
import unicodedata
from datetime import UTC, date, datetime
from pathlib import Path

import segno
from fpdf import FPDF
from PIL import Image

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),  # Alpine, Fedora
)
FONT_FAMILY = "DejaVu"
CORE_FONT_FAMILY = "Helvetica"

MONTHS = (
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
)  # fmt: skip

PAGE_W, PAGE_H = 297.0, 210.0
MARGIN = 18.0
QR_SIZE = 42.0
QR_ERROR_LEVEL = "m"


def _find_font(filename: str) -> Path | None:
    for directory in FONT_DIRS:
        candidate = directory / filename
        if candidate.is_file():
            return candidate
    return None


# Letters that Unicode does not decompose into a base letter and an accent.
_LATIN_LOOKALIKES = str.maketrans(
    {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i",
     "Œ": "OE", "œ": "oe", "Ŋ": "N", "ŋ": "n", "Ŧ": "T", "ŧ": "t"}
)  # fmt: skip


def _latin1(text: str) -> str:
    """Best effort for the core fonts: keep Latin-1, strip accents, else '?'."""
    out = []
    for char in text.translate(_LATIN_LOOKALIKES):
        try:
            char.encode("latin-1")
            out.append(char)
            continue
        except UnicodeEncodeError:
            pass
        stripped = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        try:
            out.append(stripped.encode("latin-1").decode("latin-1") or "?")
        except UnicodeEncodeError:
            out.append("?")
    return "".join(out)


def qr_code_png(url: str, *, scale: int = 10, border: int = 4) -> bytes:
    """The verify URL as a QR code (never a Micro QR, which phones rarely read)."""
    buffer = io.BytesIO()
    segno.make_qr(url, error=QR_ERROR_LEVEL).save(buffer, kind="png", scale=scale, border=border)
    return buffer.getvalue()


def format_date(day: date) -> str:
    # Not strftime("%B"): that follows the process locale.
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


class _Certificate(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="landscape", unit="mm", format="A4")
        regular, bold = _find_font("DejaVuSans.ttf"), _find_font("DejaVuSans-Bold.ttf")
        self.unicode = regular is not None and bold is not None
        if self.unicode:
            self.add_font(FONT_FAMILY, "", str(regular))
            self.add_font(FONT_FAMILY, "B", str(bold))
        self.set_auto_page_break(False)
        self.set_margins(MARGIN, MARGIN, MARGIN)

    def text_for_font(self, text: str) -> str:
        return text if self.unicode else _latin1(text)

    def use(self, size: float, style: str = "") -> None:
        self.set_font(FONT_FAMILY if self.unicode else CORE_FONT_FAMILY, style, size)

    def centred(self, text: str, *, size: float, style: str = "", min_size: float = 12) -> None:
        """One centred line, shrinking the font until it fits the page width."""
        text = self.text_for_font(text)
        width = PAGE_W - 2 * MARGIN
        self.use(size, style)
        while size > min_size and self.get_string_width(text) > width:
            size -= 1
            self.use(size, style)
        if self.get_string_width(text) > width:
            self.multi_cell(width, size * 0.45, text, align="C", new_x="LMARGIN", new_y="NEXT")
        else:
            self.cell(width, size * 0.5, text, align="C", new_x="LMARGIN", new_y="NEXT")


def render_certificate_pdf(
    *,
    display_name: str,
    course_title: str,
    issued_on: date,
    credential_id: str,
    verify_url: str,
    issuer_name: str = "Shipwright",
) -> bytes:
    """Render the certificate; pure function of its arguments (no timestamps of now)."""
    pdf = _Certificate()
    pdf.set_title(pdf.text_for_font(f"{course_title}: {display_name}"))
    pdf.set_author(pdf.text_for_font(issuer_name))
    pdf.set_creator(pdf.text_for_font(issuer_name))
    pdf.set_creation_date(datetime(issued_on.year, issued_on.month, issued_on.day, tzinfo=UTC))
    pdf.add_page()

    pdf.set_draw_color(40, 60, 90)
    pdf.set_line_width(1.2)
    pdf.rect(8, 8, PAGE_W - 16, PAGE_H - 16)
    pdf.set_line_width(0.3)
    pdf.rect(11, 11, PAGE_W - 22, PAGE_H - 22)

    pdf.set_text_color(40, 60, 90)
    pdf.set_y(26)
    pdf.centred(issuer_name.upper(), size=14, style="B")
    pdf.ln(6)
    pdf.centred("Certificate of Completion", size=30, style="B")
    pdf.ln(10)
    pdf.set_text_color(60, 60, 60)
    pdf.centred("This certifies that", size=14)
    pdf.ln(5)
    pdf.set_text_color(0, 0, 0)
    pdf.centred(display_name, size=40, style="B", min_size=18)
    pdf.ln(6)
    pdf.set_text_color(60, 60, 60)
    pdf.centred("has successfully completed the course", size=14)
    pdf.ln(4)
    pdf.set_text_color(0, 0, 0)
    pdf.centred(course_title, size=22, style="B", min_size=12)
    pdf.ln(5)
    pdf.set_text_color(60, 60, 60)
    pdf.centred(f"Issued on {format_date(issued_on)}", size=13)

    qr_x, qr_y = PAGE_W - MARGIN - QR_SIZE, PAGE_H - MARGIN - QR_SIZE
    # 8-bit grey rather than segno's 1-bit PNG: fpdf2 stores 1-bit images as CCITT G4,
    # which simple PDF tools (and our tests) cannot read; grey is stored as Flate.
    qr_image = Image.open(io.BytesIO(qr_code_png(verify_url))).convert("L")
    pdf.image(qr_image, x=qr_x, y=qr_y, w=QR_SIZE, h=QR_SIZE)

    text_width = qr_x - MARGIN - 6
    pdf.set_xy(MARGIN, PAGE_H - MARGIN - 22)
    pdf.use(10)
    pdf.multi_cell(
        text_width, 5, pdf.text_for_font(f"Credential ID: {credential_id}"),
        new_x="LMARGIN", new_y="NEXT",
    )  # fmt: skip
    pdf.multi_cell(
        text_width, 5, pdf.text_for_font(f"Verify at: {verify_url}"),
        new_x="LMARGIN", new_y="NEXT",
    )  # fmt: skip
    pdf.use(8)
    pdf.multi_cell(
        text_width, 4,
        "This page is a printable copy. The signed Open Badges credential at the "
        "address above is the proof; scan the code to check it.",
    )  # fmt: skip
    return bytes(pdf.output())
