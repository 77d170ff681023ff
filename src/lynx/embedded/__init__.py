"""Built-in models: checkpoints Lynx can run without downloading anything.

``lynx generate`` without ``--model`` uses a built-in name. :func:`resolve_model` turns
such a name into a real Hugging Face checkpoint directory, generating it on first use
(about a second) under ``$LYNX_CACHE/models`` or ``~/.cache/lynx/models``; any other
string is taken as a path and returned unchanged.

Built-ins (all weights random and *untrained*; see :mod:`lynx.embedded.weights`):

* ``tiny-moe``: Qwen3-MoE-style (``Qwen3MoeForCausalLM``), 4 layers, hidden 256, 8 query
  / 2 kv heads of dim 32, 32 experts top-4 of width 128, vocab 2048, bfloat16.
* ``tiny-dense``: its dense counterpart (``Qwen3ForCausalLM``), MLP width 512, the same
  active parameters per token.
"""

from __future__ import annotations

from pathlib import Path

from lynx.embedded.materialize import cache_root, materialize, model_dir
from lynx.embedded.spec import BUILTIN_MODELS, BuiltinSpec

DEFAULT_MODEL = "tiny-moe"

__all__ = [
    "BUILTIN_MODELS",
    "DEFAULT_MODEL",
    "BuiltinSpec",
    "cache_root",
    "is_builtin",
    "model_dir",
    "resolve_model",
]


def is_builtin(name: str) -> bool:
    """Whether ``name`` names a built-in model (exact match, e.g. ``"tiny-moe"``)."""
    return name in BUILTIN_MODELS


def resolve_model(name_or_path: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The checkpoint directory for a built-in name or a path.

    A built-in name is materialised on first use (atomically, safe across concurrent
    processes) and its directory returned; later calls return the same directory without
    writing anything. Anything else is returned as a :class:`~pathlib.Path`, unchanged
    and unchecked: a local directory that happens to be called ``tiny-moe`` wins over the
    built-in only if given as a path (``./tiny-moe``). ``cache_dir`` overrides the cache
    root (``$LYNX_CACHE`` / ``~/.cache/lynx``).
    """
    if isinstance(name_or_path, str) and is_builtin(name_or_path):
        return materialize(BUILTIN_MODELS[name_or_path], cache_dir)
    return Path(name_or_path)
