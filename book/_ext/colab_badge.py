"""Sphinx extension for the book's website: the Colab badge image from the site itself, no network images.

The chapters' notebooks carry the standard Colab badge as an absolute URL (``REMOTE_BADGE``), so that the
badge shows wherever the notebook is opened on its own: in Colab, on GitHub, in Jupyter. The website must
load nothing from the network (tests/test_browser.py), so when the book is built this extension swaps that
URL for the local copy ``book/_static/colab-badge.svg`` (``LOCAL_BADGE``), which Sphinx then copies into
the build like any local image. Any other image whose address is on the network is reported as a warning,
which fails ``jupyter-book build -W`` (how `make book` and the tests build).

Enabled in ``book/_config.yml`` (``sphinx: local_extensions: {colab_badge: _ext}``); ``book/sync.py``
writes the badges with ``REMOTE_BADGE`` (tests/test_wheel.py checks that the two agree).
"""

from __future__ import annotations

from docutils import nodes
from sphinx.util import logging

#: The standard badge image, as Colab publishes it; book/sync.py writes it into every chapter.
REMOTE_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
#: The copy the website serves, relative to the book's folder (a leading "/" is the source folder for Sphinx).
LOCAL_BADGE = "_static/colab-badge.svg"

logger = logging.getLogger(__name__)


def _is_remote(uri: str) -> bool:
    return "://" in uri or uri.startswith("//")


def localise_images(app, doctree: nodes.document) -> None:
    """Point every Colab badge image at the local copy; warn about any other image on the network."""
    for node in doctree.findall(nodes.image):
        uri = node.get("uri", "")
        if uri == REMOTE_BADGE:
            node["uri"] = "/" + LOCAL_BADGE
        elif _is_remote(uri):
            logger.warning("image %s would be loaded from the network; ship a local copy in book/_static",
                           uri, location=node, type="colab_badge", subtype="remote_image")


def setup(app):
    # Before Sphinx's image collector (priority 500), which copies local images into the build and leaves
    # remote ones as they are.
    app.connect("doctree-read", localise_images, priority=400)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
