"""Test helpers that ship with Lynx: tiny, real Hugging Face checkpoints built offline.

Nothing can be downloaded in tests, so these helpers build checkpoints on the fly, the
way ``transformers.testing_utils`` does for transformers itself:

* :func:`build_tokenizer` trains a small byte-level BPE tokenizer (milliseconds) that
  ``AutoTokenizer.from_pretrained`` loads.
* :func:`build_tiny_checkpoint` / :func:`build_variant` write a tiny random model of any
  supported architecture with transformers' own classes and ``save_pretrained``, plus
  the tokenizer and a generation config. :data:`VARIANTS` names one configuration
  detail a loader must honour per entry (tied embeddings, sliding windows, rope
  scaling, dense layers inside MoE models, ...).

See :mod:`lynx.testing.checkpoints` for what the files contain, key by key.
transformers is imported only when a checkpoint or tokenizer is built.
"""

from __future__ import annotations

from lynx.testing.checkpoints import (
    ARCHITECTURES,
    VARIANTS,
    build_tiny_checkpoint,
    build_variant,
)
from lynx.testing.tokenizer import BOS_TOKEN_ID, EOS_TOKEN_ID, build_tokenizer

__all__ = [
    "ARCHITECTURES",
    "BOS_TOKEN_ID",
    "EOS_TOKEN_ID",
    "VARIANTS",
    "build_tiny_checkpoint",
    "build_tokenizer",
    "build_variant",
]
