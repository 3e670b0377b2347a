"""The data layer: shipped files and checksums, tokenizers, WikiText-2 counts, token cache, SNLI, batching."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from gflow_lite.data import (
    ChecksumMismatchError,
    DataFileMissingError,
    RandomBlockSampler,
    checksums,
    eval_block_starts,
    eval_blocks,
    get_tokenizer,
    load_snli,
    load_wikitext2,
    paths,
    read_manifest,
    read_wikitext2_lines,
    verified_path,
)
from gflow_lite.data.token_cache import load_cached
from gflow_lite.data.tokenization import ByteBPETokenizer, read_gzip_lines

REPO = Path(__file__).resolve().parents[1]

# Published WikiText-2 (v1, tokenized) word-level counts: words plus one <eos> per line.
WORD_COUNTS = {"train": 2_088_628, "valid": 217_646, "test": 245_569}
# Measured with this package (tokenizers 0.23.3, tiktoken 0.14.0); the line convention is documented in
# gflow_lite/data/tokenization.py. Recorded so that a silent change of tokenization shows up here.
RECORDED_COUNTS = {
    "wordpiece": {"train": 2_265_484, "valid": 228_778, "test": 258_011},
    "gpt2": {"train": 2_448_382, "valid": 258_659, "test": 295_877},
    ("bpe", 4096): {"train": 3_058_089, "valid": 317_905, "test": 360_590},
    ("bpe", 512): {"train": 5_191_097, "valid": 532_666, "test": 598_052},
}


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A private copy of the manifest and the WikiText-2 valid file, used as GFLOW_DATA_DIR."""
    root = tmp_path / "data"
    (root / "wikitext-2").mkdir(parents=True)
    shutil.copy(REPO / "data" / "SHA256SUMS", root / "SHA256SUMS")
    shutil.copy(REPO / "data" / "wikitext-2" / "wiki.valid.tokens.gz", root / "wikitext-2")
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(root))
    return root


# ------------------------------------------------------------------------------------------ shipped data
def test_manifest_lists_every_shipped_file_and_they_verify():
    manifest = read_manifest(paths.PACKAGE_DATA_DIR)
    shipped = {
        str(p.relative_to(paths.PACKAGE_DATA_DIR))
        for p in paths.PACKAGE_DATA_DIR.rglob("*")
        if p.is_file() and p.suffix != ".md" and p.name != "SHA256SUMS"
    }
    assert set(manifest) == shipped
    for relative in manifest:
        assert verified_path(relative).is_file()
    for folder in ("wikitext-2", "snli_1.0", "bert-base-uncased", "gpt2-bpe"):
        assert (paths.PACKAGE_DATA_DIR / folder / "SOURCE.md").is_file()


def test_data_dir_resolves_through_the_package_not_the_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.DATA_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.data_dir() == REPO / "data"
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path))
    assert paths.data_dir() == tmp_path.resolve()


def test_checksum_mismatch_names_file_hashes_and_fix(data_copy):
    target = data_copy / "wikitext-2" / "wiki.valid.tokens.gz"
    expected = read_manifest()["wikitext-2/wiki.valid.tokens.gz"]
    raw = bytearray(target.read_bytes())
    raw[100] ^= 0xFF
    target.write_bytes(bytes(raw))
    with pytest.raises(ChecksumMismatchError) as info:
        read_wikitext2_lines("valid")
    message = str(info.value)
    assert str(target) in message and expected in message
    assert info.value.actual in message and info.value.actual != expected
    assert "git checkout -- data/wikitext-2/wiki.valid.tokens.gz" in message
    assert "\n" not in message


def test_missing_file_and_missing_manifest_are_clear(data_copy):
    with pytest.raises(DataFileMissingError, match=r"wiki\.train\.tokens\.gz is missing.*git checkout"):
        verified_path("wikitext-2/wiki.train.tokens.gz")
    (data_copy / "SHA256SUMS").unlink()
    with pytest.raises(DataFileMissingError, match="SHA256SUMS not found"):
        verified_path("wikitext-2/wiki.valid.tokens.gz")


def test_verification_is_cached_per_process_but_sees_changes(data_copy, monkeypatch):
    calls = []
    real = checksums.sha256_file
    monkeypatch.setattr(checksums, "sha256_file", lambda p: calls.append(p) or real(p))
    verified_path("wikitext-2/wiki.valid.tokens.gz")
    verified_path("wikitext-2/wiki.valid.tokens.gz")
    assert len(calls) == 1
    target = data_copy / "wikitext-2" / "wiki.valid.tokens.gz"
    target.write_bytes(target.read_bytes() + b"x")  # a change on disk is hashed again and caught
    with pytest.raises(ChecksumMismatchError):
        verified_path("wikitext-2/wiki.valid.tokens.gz")
    assert len(calls) == 2


# -------------------------------------------------------------------------------------------- WikiText-2
@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_word_level_counts_are_the_published_ones(split):
    ids = load_wikitext2(split, "word")
    assert len(ids) == WORD_COUNTS[split]
    tok = get_tokenizer("word")
    assert tok.vocab_size == 33_278
    lines = read_gzip_lines(f"wikitext-2/wiki.{split}.tokens.gz")
    assert int((ids == tok.eol_id).sum()) == len(lines)  # one <eos> per line
    assert int(ids.max()) < tok.vocab_size


@pytest.mark.slow
@pytest.mark.parametrize("key", list(RECORDED_COUNTS), ids=str)
def test_subword_counts_are_positive_deterministic_and_recorded(key):
    name, size = key if isinstance(key, tuple) else (key, 4096)
    tok = get_tokenizer(name, size)
    for split, expected in RECORDED_COUNTS[key].items():
        ids = load_wikitext2(split, tok)
        assert len(ids) == expected
        assert int(ids.max()) < tok.vocab_size
        again = tok.encode_lines(read_gzip_lines(f"wikitext-2/wiki.{split}.tokens.gz")[:200])
        np.testing.assert_array_equal(ids[: len(again)], again)


def test_tokenizer_sizes_and_fingerprints():
    sizes = {"word": 33_278, "wordpiece": 30_522, "gpt2": 50_257}
    for name, size in sizes.items():
        tok = get_tokenizer(name)
        assert tok.name == name and tok.vocab_size == size
        assert tok.fingerprint.startswith(name) and tok.fingerprint == get_tokenizer(name).fingerprint
    bpe = get_tokenizer("bpe", 512)
    assert bpe.vocab_size == 512 and bpe.fingerprint.startswith("bpe-512-")


def test_line_conventions_and_round_trips():
    text = " = Valkyria Chronicles III = \n \n Senjō no Valkyria 3 : <unk> Chronicles\n"
    lines = text.split("\n")[:-1]
    word = get_tokenizer("word")
    assert word.encode(text) == word.encode_lines(lines).tolist()
    assert (
        word.decode(word.encode(text))
        == "= Valkyria Chronicles III =\n\nSenjō no Valkyria 3 : <unk> Chronicles\n"
    )
    assert word.encode("zzzunseenzzz") == [word.unk_id]

    wp = get_tokenizer("wordpiece")
    ids = wp.encode(text)
    assert ids == wp.encode_lines(lines).tolist()
    assert ids.count(wp.eol_id) == 3 and wp.unk_id in ids  # [SEP] per line, <unk> -> [UNK]
    assert wp.decode(wp.encode("Hello World\nagain")) == "hello world\nagain"

    for name in ("gpt2", "bpe"):
        tok = get_tokenizer(name, 512)
        assert tok.decode(tok.encode(text)) == text
        assert tok.decode(tok.encode_lines(lines).tolist()) == text


def test_bpe_training_is_deterministic_across_processes():
    lines = read_gzip_lines("wikitext-2/wiki.valid.tokens.gz")[:1500]
    first, second = ByteBPETokenizer.train(lines, 400), ByteBPETokenizer.train(lines, 400)
    assert first == second
    code = (
        "import hashlib;from gflow_lite.data.tokenization import ByteBPETokenizer, read_gzip_lines;"
        "lines = read_gzip_lines('wikitext-2/wiki.valid.tokens.gz')[:1500];"
        "print(hashlib.sha256(ByteBPETokenizer.train(lines, 400).encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    import hashlib

    assert out.stdout.strip() == hashlib.sha256(first.encode()).hexdigest()


def test_token_cache_detects_corruption_and_rebuilds(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.CACHE_DIR_ENV, str(tmp_path / "cache"))
    reference = load_wikitext2("valid", "word")
    (cached,) = (tmp_path / "cache" / "wikitext-2").glob("valid.*.npy")
    assert reference.dtype == np.uint16 and load_cached(cached) is not None

    raw = bytearray(cached.read_bytes())
    raw[-3] ^= 0x5A  # a flipped bit inside the array: loads, but the hash differs
    cached.write_bytes(bytes(raw))
    assert load_cached(cached) is None
    np.testing.assert_array_equal(load_wikitext2("valid", "word"), reference)

    cached.write_bytes(cached.read_bytes()[:1000])  # truncated
    assert load_cached(cached) is None
    np.testing.assert_array_equal(load_wikitext2("valid", "word"), reference)
    assert load_cached(cached) is not None


# ------------------------------------------------------------------------------------------------- SNLI
def test_snli_shipped_counts_and_dropped_rows():
    expected = {  # kept, dropped ('-'), per-label counts from data/snli_1.0/SOURCE.md
        "dev": (9842, 158, {"entailment": 3329, "neutral": 3235, "contradiction": 3278}),
        "test": (9824, 176, {"entailment": 3368, "neutral": 3219, "contradiction": 3237}),
        "train": (5498, 4, {"entailment": 1806, "neutral": 1786, "contradiction": 1906}),
    }
    for split, (kept, dropped, counts) in expected.items():
        data = load_snli(split)
        assert (len(data), data.dropped, data.label_counts()) == (kept, dropped, counts)
        assert len(data.premises) == len(data.hypotheses) == kept
    assert load_snli("validation").split == "dev"
    with pytest.raises(ValueError, match="unknown SNLI split"):
        load_snli("dev_matched")


def _records():
    return [
        {
            "gold_label": "entailment",
            "sentence1": "A man sleeps.",
            "sentence2": "A person rests.",
            "pairID": "1",
        },
        {"gold_label": "-", "sentence1": "A dog.", "sentence2": "A cat.", "pairID": "2"},
        {"gold_label": "contradiction", "sentence1": "It rains.", "sentence2": "It is dry.", "pairID": "3"},
    ]


def test_snli_reads_official_jsonl_zip_and_directory(tmp_path):
    body = "".join(json.dumps(r) + "\n" for r in _records())
    jsonl = tmp_path / "snli_1.0_dev.jsonl"
    jsonl.write_text(body)
    archive = tmp_path / "snli_1.0.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("snli_1.0/snli_1.0_dev.jsonl", body)
        zf.writestr("snli_1.0/snli_1.0_test.jsonl", "".join(json.dumps(r) + "\n" for r in _records()[:1]))
    for source in (jsonl, archive, tmp_path):
        data = load_snli("dev", path=source)
        assert data.premises == ["A man sleeps.", "It rains."]
        assert data.labels == [0, 2] and data.dropped == 1
    assert len(load_snli("test", path=archive)) == 1
    with pytest.raises(DataFileMissingError, match="snli_1.0_train.jsonl"):
        load_snli("train", path=archive)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"sentence1": "x"}\n')
    with pytest.raises(Exception, match="line 1"):
        load_snli("dev", path=bad)


# --------------------------------------------------------------------------------------------- batching
@pytest.mark.parametrize("n,block", [(2, 4), (17, 4), (16, 4), (100, 7), (1000, 32)])
def test_eval_blocks_cover_every_target_exactly_once(n, block):
    ids = np.arange(n, dtype=np.int64) * 3 + 1
    xs, ys = [], []
    for batch in eval_blocks(ids, block, batch_size=3):
        assert batch.x.shape == batch.y.shape and batch.x.shape[1] <= block
        np.testing.assert_array_equal(batch.y.numpy(), batch.x.numpy() + 3)  # y is x shifted by one
        xs.append(batch.x.reshape(-1))
        ys.append(batch.y.reshape(-1))
    np.testing.assert_array_equal(torch.cat(ys).numpy(), ids[1:])
    np.testing.assert_array_equal(torch.cat(xs).numpy(), ids[:-1])
    assert sum(length for _, length in eval_block_starts(n, block)) == n - 1
    assert len(list(eval_blocks(ids, block, batch_size=3, max_batches=1))) == 1


def test_random_blocks_are_shifted_and_resumable():
    ids = np.arange(500)
    sampler = RandomBlockSampler(ids, block_size=8, batch_size=4, seed=3)
    x, y = sampler.next_batch()
    assert x.shape == (4, 8) and torch.equal(y, x + 1) and int(y.max()) < 500
    state = sampler.generator.get_state()  # what a checkpoint keeps
    expected = [sampler.next_batch()[0] for _ in range(3)]
    other = RandomBlockSampler(ids, block_size=8, batch_size=4, seed=99)
    other.generator.set_state(state)
    for want in expected:
        assert torch.equal(other.next_batch()[0], want)
    same_seed = RandomBlockSampler(ids, block_size=8, batch_size=4, seed=3)
    assert torch.equal(same_seed.next_batch()[0], x)
    with pytest.raises(ValueError, match="too few"):
        RandomBlockSampler(np.arange(5), block_size=8, batch_size=1, seed=0)
