"""The printable certificate PDF.

The PDF is read back with a small reader below (text through the fonts' ToUnicode
maps, the QR code from its Flate image) so that the tests need no PDF library.
"""

import re
import subprocess
import zlib
from datetime import date

import pytest
import segno

from certificates import pdf as certificate_pdf
from certificates.pdf import render_certificate_pdf

VERIFY_URL = "https://shipwright.example/verify/3kTMd9sXz2Qw7RpLq8VnYb/"
CREDENTIAL_ID = "3kTMd9sXz2Qw7RpLq8VnYb"


def _render(**overrides) -> bytes:
    fields = {
        "display_name": "Ada Lovelace",
        "course_title": "Python Basics",
        "issued_on": date(2025, 1, 31),
        "credential_id": CREDENTIAL_ID,
        "verify_url": VERIFY_URL,
    }
    return render_certificate_pdf(**(fields | overrides))


# --- a minimal PDF reader, enough for fpdf2's output ---------------------------------


def _objects(data: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """Object number -> (dictionary source, decoded stream or None)."""
    objects = {}
    position = 0
    header = re.compile(rb"(\d+) 0 obj\s*")
    while match := header.search(data, position):
        number, start = int(match.group(1)), match.end()
        end = re.compile(rb">>\s*(stream\r?\n|endobj)").search(data, start)
        dictionary = data[start : end.start() + 2]
        stream = None
        position = end.end()
        if end.group(1).startswith(b"stream"):
            length = int(re.search(rb"/Length (\d+)", dictionary).group(1))
            stream = data[position : position + length]
            if b"/FlateDecode" in dictionary:
                stream = zlib.decompress(stream)
            position += length
        objects[number] = (dictionary, stream)
    return objects


def _reference(dictionary: bytes, key: bytes) -> int:
    return int(re.search(rb"/" + key + rb" (\d+) 0 R", dictionary).group(1))


def _to_unicode(cmap: bytes) -> dict[int, str]:
    mapping = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", cmap, re.S):
        for code, text in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            mapping[int(code, 16)] = bytes.fromhex(text.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", cmap, re.S):
        for low, high, text in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            first = ord(bytes.fromhex(text.decode()).decode("utf-16-be"))
            for offset, code in enumerate(range(int(low, 16), int(high, 16) + 1)):
                mapping[code] = chr(first + offset)
    return mapping


def _literal_strings(content: bytes):
    """(font resource name, raw string bytes) for each string shown with Tj."""
    font = None
    i = 0
    while i < len(content):
        if content.startswith(b"/F", i):
            name = re.match(rb"/(F\d+)\s+[\d.]+\s+Tf", content[i:])
            if name:
                font = name.group(1).decode()
        if content[i : i + 1] == b"(":
            depth, i, raw = 1, i + 1, bytearray()
            while depth:
                char = content[i : i + 1]
                if char == b"\\":
                    following = content[i + 1 : i + 2]
                    octal = re.match(rb"[0-7]{1,3}", content[i + 1 : i + 4])
                    if octal:
                        raw.append(int(octal.group(), 8))
                        i += 1 + len(octal.group())
                        continue
                    raw += {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}.get(following, following)
                    i += 2
                    continue
                depth += {b"(": 1, b")": -1}.get(char, 0)
                if depth:
                    raw += char
                i += 1
            yield font, bytes(raw)
            continue
        i += 1


def pdf_text(data: bytes) -> str:
    objects = _objects(data)
    pages = [d for d, _ in objects.values() if re.search(rb"/Type /Page\b", d)]
    lines = []
    for page in pages:
        resources = objects[_reference(page, b"Resources")][0]
        fonts = dict(re.findall(rb"/(F\d+) (\d+) 0 R", resources))
        cmaps = {}
        for name, number in fonts.items():
            font = objects[int(number)][0]
            if b"/ToUnicode" in font:
                cmaps[name.decode()] = _to_unicode(objects[_reference(font, b"ToUnicode")][1])
        content = objects[_reference(page, b"Contents")][1]
        for font, raw in _literal_strings(content):
            if font in cmaps:
                codes = [int.from_bytes(raw[j : j + 2], "big") for j in range(0, len(raw), 2)]
                lines.append("".join(cmaps[font].get(code, "\ufffd") for code in codes))
            else:
                lines.append(raw.decode("latin-1"))
    return "\n".join(lines)


def _png_unfilter(raw: bytes, width: int, height: int) -> list[bytes]:
    """Undo PNG row predictors (PDF /Predictor 15) for 8-bit greyscale."""
    rows, previous, stride = [], bytes(width), width + 1
    for y in range(height):
        kind, line = raw[y * stride], bytearray(raw[y * stride + 1 : (y + 1) * stride])
        for x in range(width):
            left = line[x - 1] if x else 0
            up, up_left = previous[x], previous[x - 1] if x else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                nearest = min((abs(p - left), 0, left), (abs(p - up), 1, up), (abs(p - up_left), 2, up_left))[2]
                line[x] = (line[x] + nearest) & 0xFF
        rows.append(bytes(line))
        previous = line
    return rows


def pdf_images(data: bytes) -> list[list[bytes]]:
    images = []
    for dictionary, stream in _objects(data).values():
        if b"/Subtype /Image" not in dictionary:
            continue
        assert b"/DeviceGray" in dictionary and b"/BitsPerComponent 8" in dictionary, dictionary
        width = int(re.search(rb"/Width (\d+)", dictionary).group(1))
        height = int(re.search(rb"/Height (\d+)", dictionary).group(1))
        if b"/Predictor 15" in dictionary:
            images.append(_png_unfilter(stream, width, height))
        else:
            images.append([stream[y * width : (y + 1) * width] for y in range(height)])
    return images


def _qr_modules(image: list[bytes]) -> list[list[bool]]:
    """Read the QR grid by sampling module centres (border of 4 modules)."""
    size = len(image)
    for modules in range(21, 178, 4):
        scale = size / (modules + 8)
        if scale == int(scale):
            scale = int(scale)
            return [
                [image[(4 + y) * scale + scale // 2][(4 + x) * scale + scale // 2] < 128 for x in range(modules)]
                for y in range(modules)
            ]
    raise AssertionError(f"a {size}px image is not a QR code with a 4-module border")


def _decodes_to(image: list[bytes], url: str) -> bool:
    modules = _qr_modules(image)
    candidates = [segno.make_qr(url, error=level, boost_error=boost) for level in "lmqh" for boost in (True, False)]
    return any([[bool(v) for v in row] for row in qr.matrix] == modules for qr in candidates)


# --- tests ---------------------------------------------------------------------------


def test_the_certificate_is_one_a4_landscape_page():
    data = _render()

    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type /Page\b", data)) == 1
    assert b"/MediaBox [0 0 841.89 595.28]" in data


@pytest.mark.parametrize(
    "display_name",
    ["Ada Lovelace", "Zoë Ωmega-Łukasz", "Дмитрий Менделеев", "Ελένη Παπαδοπούλου", "Nguyễn Thị Hương"],
)
def test_the_certificate_shows_the_name_course_date_id_and_verify_url(display_name):
    text = pdf_text(_render(display_name=display_name, course_title="Data Engineering with Python"))

    for expected in [
        display_name,
        "Data Engineering with Python",
        "31 January 2025",
        CREDENTIAL_ID,
        VERIFY_URL,
        "Shipwright".upper(),
    ]:
        assert expected in text, text


def test_the_certificate_never_shows_an_email_address():
    assert "@" not in pdf_text(_render())


def test_the_qr_code_encodes_the_verify_url():
    images = pdf_images(_render())

    assert len(images) == 1
    assert _decodes_to(images[0], VERIFY_URL)
    assert not _decodes_to(images[0], VERIFY_URL + "x")


def test_a_long_name_is_shrunk_to_fit_and_still_shown_in_full():
    name = "Maria Antonia Walpurgis Symphorosa von Bayern-Kurfürstin zu Sachsen und Polen"

    text = pdf_text(_render(display_name=name))

    assert name in text.replace("\n", " ")


def test_rendering_is_deterministic():
    assert _render() == _render()


def test_without_dejavu_the_certificate_falls_back_to_transliterated_core_fonts(monkeypatch, tmp_path):
    monkeypatch.setattr(certificate_pdf, "FONT_DIRS", (tmp_path,))

    text = pdf_text(_render(display_name="Zoë Łukasz Dvořák Дмитрий"))

    assert "Zoë Lukasz Dvorák ???????" in text
    assert CREDENTIAL_ID in text


def test_poppler_reads_the_same_text(tmp_path):
    path = tmp_path / "certificate.pdf"
    path.write_bytes(_render(display_name="Zoë Ωmega-Łukasz"))

    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout

    assert "Zoë Ωmega-Łukasz" in text
    assert CREDENTIAL_ID in text
    assert VERIFY_URL in text
