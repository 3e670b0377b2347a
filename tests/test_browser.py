"""The built website in a real browser: headless Chromium opens the index and every chapter page.

For each page: the DOM (after scripts ran) must contain the chapter's title and at least as many PNG
figures as its source has ``plt.show()`` calls, each a real PNG file in the build; a screenshot must be
a non-blank image. The book is built once per session (tests/book_support.py), stubs, quick mode.
Chromium comes from the Debian package (`make chromium`); without it these tests skip, saying so.
"""

from __future__ import annotations

import base64
import html.parser
import re
import subprocess
from pathlib import Path
from typing import List

import pytest

from book_support import BOOK, built_book, chapter_sources, figure_count, find_chromium, sync_module

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=5000"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("chromium is not installed and could not be installed (`make chromium` needs apt-get as "
                    "root); the website build itself is still tested by tests/test_book.py")
    return path


@pytest.fixture(scope="module")
def html_dir() -> Path:
    return built_book().require()


def _browse(chromium: str, page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)


class _Images(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: List[str] = []
        self.h1: List[str] = []
        self._in_h1 = False
        self.links: List[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img" and attrs.get("src"):
            self.srcs.append(attrs["src"])
        if tag == "h1":
            self._in_h1 = True
            self.h1.append("")
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data):
        if self._in_h1:
            self.h1[-1] += data


def _png_bytes(src: str, page: Path) -> bytes:
    if src.startswith("data:image/png;base64,"):
        return base64.b64decode(src.split(",", 1)[1])
    path = (page.parent / src.split("?")[0]).resolve()
    assert path.is_file(), f"{page.name}: figure {src} is not in the build"
    return path.read_bytes()


PAGES = ["index"] + [p.stem for p in chapter_sources()]


@pytest.mark.parametrize("stem", PAGES)
def test_page_renders_with_its_figures(stem, chromium, html_dir, tmp_path):
    page = html_dir / f"{stem}.html"
    assert page.is_file(), f"{page} was not built"
    proc = _browse(chromium, page, tmp_path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert "<html" in dom and "</html>" in dom, "chromium returned no DOM"
    parsed = _Images()
    parsed.feed(dom)
    assert parsed.h1, f"{stem}: no <h1> rendered"
    if stem == "index":
        for chapter in chapter_sources():
            assert f"{chapter.stem}.html" in dom, f"the index does not link {chapter.stem}"
        return
    source = (BOOK / f"{stem}.py").read_text()
    title = re.search(r"^# # (.+)$", source, flags=re.M).group(1)
    assert any(title in h.replace("\u00b6", "").replace("#", "") for h in parsed.h1), (title, parsed.h1)
    figures = [s for s in parsed.srcs if s.startswith("data:image/png") or re.search(r"_images/[^/]+\.png", s)]
    expected = figure_count(source)
    assert len(figures) >= expected, f"{stem}: {len(figures)} PNG figures on the page, {expected} plt.show() calls"
    for src in figures:
        data = _png_bytes(src, page)
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, f"{stem}: {src} is not a real figure"
    colab = sync_module().colab_url(stem)
    assert colab in parsed.links, f"{stem}: no link to {colab} (badge) in the rendered page"


@pytest.mark.parametrize("stem", PAGES)
def test_page_screenshot_is_not_blank(stem, chromium, html_dir, tmp_path):
    import matplotlib.image as mpimg

    shot = tmp_path / f"{stem}.png"
    proc = _browse(chromium, html_dir / f"{stem}.html", tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    image = mpimg.imread(shot)
    assert image.shape[:2] == (2000, 1280)
    assert image[..., :3].std() > 0.05, f"{stem}: the screenshot is (nearly) blank"
