"""Write built-in models to disk once, atomically, and find them again.

A built-in checkpoint is an ordinary Hugging Face directory (``config.json``,
``generation_config.json``, ``model.safetensors``, ``tokenizer.json``,
``tokenizer_config.json``) under ``<cache root>/models/<name>-<version>``, where the cache
root is ``$LYNX_CACHE`` if set, else ``~/.cache/lynx``.

Concurrency: the checkpoint is written into a fresh temporary directory next to its final
place and then renamed into place. ``rename`` of a directory is atomic on POSIX, so
another process either sees no directory or a complete one; if two processes race, the
loser's rename fails because the target exists and it discards its own copy (both copies
are byte-identical anyway). A directory without its completion marker (left by a crash
of an older, non-atomic writer, or tampered with) is rebuilt.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from lynx.embedded.spec import BuiltinSpec
from lynx.embedded.weights import iter_weights
from lynx.testing.tokenizer import build_tokenizer

# Written last inside the temporary directory: a checkpoint directory is complete iff
# this file exists.
COMPLETE_MARKER = ".lynx-complete"


def cache_root() -> Path:
    """The Lynx cache folder: ``$LYNX_CACHE`` or ``~/.cache/lynx``."""
    env = os.environ.get("LYNX_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lynx"


def model_dir(spec: BuiltinSpec, root: str | Path | None = None) -> Path:
    """Where ``spec`` is (or will be) materialised."""
    return (Path(root) if root is not None else cache_root()) / "models" / spec.dirname


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_checkpoint(spec: BuiltinSpec, out_dir: str | Path) -> Path:
    """Write the complete checkpoint of ``spec`` into ``out_dir`` (not atomic)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dtype = getattr(torch, spec.dtype)
    # Cast through float32 so the rounding is float64 -> float32 -> dtype on every machine.
    tensors = {k: v.to(torch.float32).to(dtype).contiguous() for k, v in iter_weights(spec)}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    _write_json(out / "config.json", spec.hf_config())
    _write_json(out / "generation_config.json", spec.generation_config())
    build_tokenizer(out, vocab_size=spec.vocab_size)
    return out


def is_complete(path: Path) -> bool:
    return (path / COMPLETE_MARKER).is_file()


def materialize(spec: BuiltinSpec, root: str | Path | None = None) -> Path:
    """Return the directory of ``spec``, writing it first if it is not there yet."""
    final = model_dir(spec, root)
    if is_complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.dirname}.tmp-", dir=final.parent))
    try:
        write_checkpoint(spec, tmp)
        (tmp / COMPLETE_MARKER).write_text(spec.dirname + "\n", encoding="utf-8")
        if final.exists() and not is_complete(final):
            # An incomplete directory cannot come from this writer; replace it.
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not is_complete(final):  # not a lost race: a real error
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
