r"""The built website in a real browser: headless Chromium opens the index and every chapter page.

For each page: the DOM (after scripts ran) must contain the chapter's title and at least as many PNG
figures as its source has ``plt.show()`` calls, each a real PNG file in the build, and the Colab badge as
the site's own copy of the image (the notebooks carry its absolute address); a screenshot must be
a non-blank image. Math, offline: every page that has formulas shows them typeset by the bundled MathJax
(``mjx-container`` elements, no MathJax error, no raw ``\(``/``\[``/``$$`` left in the visible text),
loads no script, style sheet or image from the network, and its Colab/Binder launch links come from
``book/_config.yml``. One screenshot of a formula-heavy page is kept (``GFLOW_SCREENSHOT_DIR``, e.g.
``results/book``, keeps it there; the committed one is ``results/book/01_geometry.png``). The book is built
once per session (tests/book_support.py), stubs, quick mode. Chromium comes from the Debian package
(`make chromium`); without it these tests skip, saying so.
"""

from __future__ import annotations

import base64
import functools
import html.parser
import http.server
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Iterator, List

import pytest

from book_support import (BOOK, ROOT, built_book, chapter_sources, figure_count, find_chromium, sync_module,
                          toc_files)

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


@pytest.fixture(scope="module")
def served(html_dir) -> Iterator[str]:
    """The build over HTTP on 127.0.0.1 (as a web host serves it; file:// pages may not load web fonts)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html_dir))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _browse(chromium: str, page: Path | str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    url = page if isinstance(page, str) else page.as_uri()
    cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url]
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
    # The notebook's badge is the absolute Colab address; the site shows its own copy (book/_ext/colab_badge.py).
    badges = [s for s in parsed.srcs if "colab-badge" in s]
    assert len(badges) == 1 and not REMOTE.match(badges[0]), f"{stem}: badge images {badges} (want one, local)"
    assert (page.parent / badges[0]).read_bytes() == (BOOK / "_static" / "colab-badge.svg").read_bytes()


@pytest.mark.parametrize("stem", PAGES)
def test_page_screenshot_is_not_blank(stem, chromium, html_dir, tmp_path):
    import matplotlib.image as mpimg

    shot = tmp_path / f"{stem}.png"
    proc = _browse(chromium, html_dir / f"{stem}.html", tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    image = mpimg.imread(shot)
    assert image.shape[:2] == (2000, 1280)
    assert image[..., :3].std() > 0.05, f"{stem}: the screenshot is (nearly) blank"


# ------------------------------------------------------------------------------------------- math offline
#: Where a formula would still be raw TeX in the text; code, scripts and MathJax's own output don't count.
RAW_TEX = re.compile(r"\\\(|\\\[|\$\$|\\begin\{")
SKIP_TEXT = {"script", "style", "pre", "code", "textarea", "mjx-container", "mjx-assistive-mml", "math"}
REMOTE = re.compile(r"^(https?:)?//")
SCREENSHOT_PAGE = "01_geometry"
#: Every page of the site: the root and each toc entry (chapters and the background pages).
ALL_PAGES = ["index"] + [re.sub(r"\.(ipynb|py|md)$", "", f) for f in toc_files()]


class _Page(html.parser.HTMLParser):
    """Visible text (outside code, scripts and typeset math), MathJax containers/errors, loaded resources."""

    def __init__(self) -> None:
        super().__init__()
        self.text: List[str] = []
        self.math = 0
        self.errors = 0
        self.resources: List[str] = []
        self.links: List[str] = []
        self._skip: List[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "mjx-container":
            self.math += 1
        if tag == "mjx-merror" or "mjx-merror" in (attrs.get("class") or ""):
            self.errors += 1
        if tag in ("script", "img") and attrs.get("src"):
            self.resources.append(attrs["src"])
        if tag == "link" and attrs.get("href") and "stylesheet" in (attrs.get("rel") or ""):
            self.resources.append(attrs["href"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in SKIP_TEXT:
            self._skip.append(tag)

    def handle_endtag(self, tag):
        if tag in SKIP_TEXT and tag in self._skip:
            while self._skip and self._skip.pop() != tag:
                pass

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def _has_math(page: Path) -> bool:
    """Whether the built page (before scripts run) holds formulas for MathJax."""
    source = page.read_text()
    return bool(re.search(r'class="[^"]*\bmath\b', source)) or bool(RAW_TEX.search(source))


@pytest.mark.parametrize("stem", ALL_PAGES)
def test_page_math_is_typeset_offline(stem, chromium, html_dir, served, tmp_path):
    page = html_dir / f"{stem}.html"
    proc = _browse(chromium, f"{served}/{stem}.html", tmp_path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    parsed = _Page()
    parsed.feed(proc.stdout)
    remote = [r for r in parsed.resources if REMOTE.match(r)]
    assert not remote, f"{stem}: loads {remote} from the network"
    assert (html_dir / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax was not copied into the build"
    text = " ".join(parsed.text)
    raw = RAW_TEX.search(text)
    assert raw is None, f"{stem}: raw TeX left in the page text: ...{text[max(raw.start() - 80, 0):raw.end() + 80]}..."
    if _has_math(page):  # (Sphinx loads MathJax only on pages with formulas)
        assert any("mathjax/tex-chtml.js" in r for r in parsed.resources), f"{stem}: the bundled MathJax is not loaded"
        assert parsed.math > 0, f"{stem}: the page has formulas but MathJax typeset none"
    assert parsed.errors == 0, f"{stem}: {parsed.errors} formulas failed to typeset (mjx-merror)"
    if stem in PAGES[1:]:
        _check_launch_links(stem, parsed.links)


def _check_launch_links(stem: str, links: List[str]) -> None:
    """Colab and Binder links on a chapter page come from the one repository setting and name its notebook."""
    repo = sync_module().repository()
    launch = [u for u in links if "colab.research.google.com/github/" in u or "/v2/gh/" in u]
    assert sync_module().colab_url(stem) in launch, f"{stem}: no Colab link built from {repo['url']}"
    for url in launch:
        assert repo["slug"] in url and repo["branch"] in url, f"{stem}: {url} is not built from {repo['url']}"
        notebook = re.search(r"(?:blob/[^/]+/|urlpath=[^&]*?|filepath=)([\w./%-]+\.ipynb)", url)
        assert notebook, f"{stem}: {url} names no notebook"
        path = re.sub(r"^.*?(?=" + re.escape(repo["path_to_book"]) + "/)", "", notebook.group(1).replace("%2F", "/"))
        assert (ROOT / path).is_file(), f"{stem}: {url} points at {path}, which is not in the repository"


def test_formula_page_screenshot_for_the_record(chromium, html_dir, served, tmp_path):
    import matplotlib.image as mpimg

    shot = tmp_path / f"{SCREENSHOT_PAGE}.png"
    proc = _browse(chromium, f"{served}/{SCREENSHOT_PAGE}.html", tmp_path, f"--screenshot={shot}",
                   "--window-size=1280,2400")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    image = mpimg.imread(shot)
    assert image[..., :3].std() > 0.05, "the screenshot is (nearly) blank"
    keep = os.environ.get("GFLOW_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
