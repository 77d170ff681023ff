"""The test tokenizer: loads with AutoTokenizer, round-trips text, is deterministic."""

from __future__ import annotations

import functools
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lynx.testing.tokenizer import (
    BOS_TOKEN_ID,
    EOS_TOKEN_ID,
    build_tokenizer,
    train_tokenizer,
)

_TMP = tempfile.TemporaryDirectory(prefix="lynx-tok-")  # removed at interpreter exit


@functools.cache
def _loaded(vocab_size: int):
    """AutoTokenizer over a freshly built tokenizer (cached: hypothesis calls often)."""
    from transformers import AutoTokenizer

    out = Path(_TMP.name) / str(vocab_size)
    return AutoTokenizer.from_pretrained(build_tokenizer(out, vocab_size=vocab_size))


@pytest.mark.parametrize("vocab_size", [300, 512, 2048])
def test_loads_with_auto_tokenizer(vocab_size: int) -> None:
    tok = _loaded(vocab_size)
    assert len(tok) == vocab_size
    assert tok.eos_token == "<|endoftext|>" and tok.eos_token_id == EOS_TOKEN_ID
    assert tok.pad_token_id == EOS_TOKEN_ID
    assert tok.bos_token_id == BOS_TOKEN_ID
    # Prompts are encoded as is: no BOS/EOS added.
    assert tok("total")["input_ids"] == tok.encode("total", add_special_tokens=False)


def test_files_are_deterministic(tmp_path: Path) -> None:
    a = build_tokenizer(tmp_path / "a", vocab_size=2048)
    b = build_tokenizer(tmp_path / "b", vocab_size=2048)
    names = sorted(p.name for p in a.iterdir())
    assert names == ["tokenizer.json", "tokenizer_config.json"]
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_tokenizer_class_is_portable(tmp_path: Path) -> None:
    import json

    config = json.loads((build_tokenizer(tmp_path) / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_training_is_fast() -> None:
    start = time.perf_counter()
    train_tokenizer(2048)
    assert time.perf_counter() - start < 1.0


def test_vocab_size_beyond_corpus_is_an_error() -> None:
    with pytest.raises(ValueError, match="at most"):
        train_tokenizer(50_000)
    with pytest.raises(ValueError, match=">="):
        train_tokenizer(100)


def test_merges_learn_corpus_words() -> None:
    tok = _loaded(2048)
    # Frequent document-QA words are single tokens in the 2048 vocabulary.
    for word in (" invoice", " total", " chart", " date"):
        assert len(tok.encode(word, add_special_tokens=False)) == 1, word


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=200))
def test_ascii_round_trip(text: str) -> None:
    tok = _loaded(512)
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_unicode_round_trip(text: str) -> None:
    # Byte level: any valid Unicode string survives, even characters never seen in training.
    tok = _loaded(2048)
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
