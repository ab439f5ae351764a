"""The HTML report of a real run opened in headless Chromium, offline: no console error, the figures drawn,
every leaderboard row present after the scripts ran, the case filter working, a screenshot that is not blank."""

import re
import shutil
import struct
import subprocess
import zlib

import pytest

from promptopt.reports import render_html

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
    "--window-size=1400,2000",
]


@pytest.fixture(scope="module")
def report_file(finished, tmp_path_factory):
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(finished[2]), encoding="utf-8")
    return path


def chromium(tmp_path, *args):
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: bash scripts/dev.sh test installs it (apt-get install chromium)")
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert not console, "\n".join(console)  # any console message: plotly and our scripts log nothing when fine
    return done


def test_scripts_run_without_errors_and_draw_everything(report_file, finished, tmp_path):
    _, _, report = finished
    dom = chromium(tmp_path, "--dump-dom", report_file.as_uri()).stdout
    assert "<title>PWNED</title>" not in dom and "<title>html-reviews: run" in dom
    assert [int(t) for t in re.findall(r'<tr data-trial="(\d+)">', dom)] == [r.trial for r in report.leaderboard]
    for name in ("history", "by_cost", "by_calls", "importance", "pareto", "models"):
        after = dom.split(f'id="fig-{name}"', 1)[1]
        inside = after[: re.search(r'<div class="figure[ "]|<h2>', after).start()]
        assert "main-svg" in inside, f"figure {name} was not drawn"
    assert re.search(r'id="case-count">\d+ shown<', dom)


def test_a_link_opens_the_filtered_cases(report_file, finished, tmp_path):
    _, _, report = finished
    dom = chromium(tmp_path, "--dump-dom", report_file.as_uri() + "#cases=regressed").stdout
    rows = re.findall(r'<tr class="(\w+)" data-kind="\w+"( hidden="")?>', dom)
    assert [kind for kind, hidden in rows if not hidden] == ["regressed"] * report.case_diff.regressed
    assert f'id="case-count">{report.case_diff.regressed} shown<' in dom
    number = next(n for c in report.case_diff.cases if int(n := re.findall(r"\d+", c.input["text"])[-1]) >= 10)
    dom = chromium(tmp_path, "--dump-dom", report_file.as_uri() + f"#cases=all&q=number%3C%2Fi%3E%20{number}").stdout
    assert re.search(r'id="case-count">1 shown<', dom)


def test_screenshot_is_not_blank(report_file, tmp_path):
    png = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={png}", report_file.as_uri())
    width, rows = decode_png(png.read_bytes(), max_rows=700)
    assert width == 1400 and len(rows) == 700
    pixels = [row[i : i + 3] for row in rows[::4] for i in range(0, len(row), 12)]
    colours = set(pixels)
    white = sum(p == b"\xff\xff\xff" for p in pixels)
    assert len(colours) > 20, f"only {len(colours)} colours: a blank page"
    assert white < 0.98 * len(pixels)


def decode_png(data: bytes, *, max_rows: int) -> tuple[int, list[bytes]]:
    """Width and the first ``max_rows`` rows of RGB bytes of an 8-bit RGB or RGBA PNG (no Pillow needed)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompressobj().decompress(idat, (width * bpp + 1) * max_rows)
    stride, prev, out = width * bpp, bytearray(width * bpp), []
    for r in range(min(max_rows, height)):
        line = raw[r * (stride + 1) : (r + 1) * (stride + 1)]
        cur = _unfilter(line[0], bytearray(line[1:]), prev, bpp)
        out.append(bytes(cur) if bpp == 3 else bytes(b for i, b in enumerate(cur) if i % 4 != 3))
        prev = cur
    return width, out


def _unfilter(kind: int, cur: bytearray, prev: bytearray, bpp: int) -> bytearray:
    if kind == 2:
        return bytearray((c + p) & 0xFF for c, p in zip(cur, prev, strict=True))
    for i in range(len(cur)):
        left = cur[i - bpp] if i >= bpp else 0
        up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
        if kind == 1:
            cur[i] = (cur[i] + left) & 0xFF
        elif kind == 3:
            cur[i] = (cur[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            cur[i] = (cur[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
    return cur
