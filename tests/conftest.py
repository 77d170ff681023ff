"""Shared fixtures: tiny real Hugging Face checkpoints built once per test session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
import torch

# Tests are deterministic and CPU-only; keep the thread count modest on 2-core CI.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def checkpoint_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``factory(variant_name)`` -> checkpoint dir, cached for the session.

    Names are :data:`lynx.testing.checkpoints.VARIANTS` keys; a ``-sharded`` suffix saves
    the same checkpoint in several shards with a ``model.safetensors.index.json``.
    """
    from lynx.testing.checkpoints import build_variant

    cache: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in cache:
            out = tmp_path_factory.mktemp(name)
            if name.endswith("-sharded"):
                cache[name] = build_variant(name.removesuffix("-sharded"), out, max_shard_size="40KB")
            else:
                cache[name] = build_variant(name, out)
        return cache[name]

    return make


@pytest.fixture(autouse=True, scope="session")
def _isolated_model_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Built-in models materialise into a per-session cache, not the user's home."""
    os.environ.setdefault("LYNX_CACHE", str(tmp_path_factory.mktemp("lynx-cache")))
