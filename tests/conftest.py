import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

# the book's support package (book/gflow_book): chapters import it with book/ as the current directory;
# tests run from the repository root, so book/ goes on the path here
BOOK = str(Path(__file__).resolve().parents[1] / "book")
if BOOK not in sys.path:
    sys.path.insert(0, BOOK)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """One intra-op thread: tiny models gain nothing from more, and a busy machine makes threads stall."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
