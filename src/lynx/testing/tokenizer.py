"""A small byte-level BPE tokenizer, trained on the fly, for tests and built-in models.

No tokenizer can be downloaded, so tests and the built-in models get one trained in a
few milliseconds on :data:`lynx.testing.corpus.CORPUS` with the ``tokenizers`` library
and saved through ``PreTrainedTokenizerFast.save_pretrained``, so that
``transformers.AutoTokenizer.from_pretrained(out_dir)`` loads it offline.

Properties the rest of Lynx may rely on:

* Byte level (GPT-2 style pre-tokenizer and decoder): every string encodes, and decoding
  returns the exact input text (no space clean-up, no normalisation).
* ``<|endoftext|>`` has id 0 and is the eos and the pad token; ``<|bos|>`` has id 1 and
  is the bos token but is *not* added to encodings (like Qwen tokenizers, prompts are
  encoded as is).
* The vocabulary has exactly ``vocab_size`` entries (special tokens, the 256 byte
  symbols, then learned merges), which the corpus is large enough to reach for sizes up
  to a little over 2048.
* Deterministic: the same arguments give byte-identical files for a given version of
  ``tokenizers``/``transformers`` (the BPE trainer breaks ties by pair order, not by
  hash order; tested across processes).

``seed`` is accepted for API symmetry with the checkpoint builders: BPE training is not
random, so the seed does not change the result.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from lynx.testing.corpus import CORPUS

EOS_TOKEN = "<|endoftext|>"
BOS_TOKEN = "<|bos|>"
SPECIAL_TOKENS: tuple[str, ...] = (EOS_TOKEN, BOS_TOKEN)  # ids 0 and 1
EOS_TOKEN_ID = 0
BOS_TOKEN_ID = 1

# Vocab sizes below this cannot hold the special tokens plus the 256 byte symbols.
_MIN_VOCAB = len(SPECIAL_TOKENS) + 256


def train_tokenizer(vocab_size: int = 512) -> Tokenizer:
    """Train the byte-level BPE on the embedded corpus and return the raw tokenizer."""
    if vocab_size < _MIN_VOCAB:
        raise ValueError(f"vocab_size must be >= {_MIN_VOCAB}, got {vocab_size}")
    tok = Tokenizer(models.BPE())
    # No prefix space: "Hello" and " Hello" stay different strings, so decode(encode(s)) == s.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=0,  # a few KB of text: every pair may become a merge
        special_tokens=list(SPECIAL_TOKENS),
        # All 256 byte symbols, so bytes absent from the corpus still encode.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # One line per "sentence" keeps pair counts independent of batching inside tokenizers.
    tok.train_from_iterator(CORPUS.splitlines(keepends=True), trainer=trainer)
    got = tok.get_vocab_size()
    if got != vocab_size:
        raise ValueError(
            f"the embedded corpus supports at most {got} tokens; asked for {vocab_size}"
        )
    return tok


def build_tokenizer(out_dir: str | Path, vocab_size: int = 512, seed: int = 0) -> Path:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``out_dir``.

    Returns ``out_dir`` as a :class:`~pathlib.Path`. ``seed`` is ignored (see module doc).
    """
    del seed  # BPE training is deterministic; kept for a uniform builder signature.
    from transformers import (
        PreTrainedTokenizerFast,  # late: transformers is slow to import
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(vocab_size),
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        bos_token=BOS_TOKEN,
        unk_token=None,  # byte level: nothing is ever unknown
        clean_up_tokenization_spaces=False,  # exact round trip of decode(encode(text))
        model_max_length=4096,
    )
    fast.save_pretrained(out)
    _portable_tokenizer_class(out / "tokenizer_config.json")
    return out


def _portable_tokenizer_class(config_path: Path) -> None:
    """Name the class ``PreTrainedTokenizerFast`` instead of ``TokenizersBackend``.

    transformers 5 writes its new class name, which transformers 4 cannot resolve;
    ``PreTrainedTokenizerFast`` loads in both (an alias of ``TokenizersBackend`` in 5).
    """
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
