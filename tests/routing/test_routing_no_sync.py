"""No host synchronisation: routing must run on ``meta`` tensors, which hold no data.

Anything that reads tensor values on the host (``.item()``, ``.tolist()``, ``nonzero``,
boolean-mask indexing, ``if tensor:``) raises on meta, so a pass here means the code can
be captured in a CUDA graph without a device->host sync.
"""

from __future__ import annotations

import pytest
import torch

from lynx.routing import count_active_experts, select_experts
from lynx.routing.lynx import packed_key_fits

META = torch.device("meta")


def test_meta_catches_host_syncs() -> None:
    x = torch.zeros(4, 8, device=META)
    syncs = (lambda: x.sum().item(), lambda: x.nonzero(), lambda: x[x > 0], lambda: bool(x.sum()))
    for sync in syncs:
        with pytest.raises((RuntimeError, NotImplementedError)):
            sync()


@pytest.mark.parametrize("policy", ["topk", "lynx", "oea"])
@pytest.mark.parametrize("scoring", ["softmax", "sigmoid"])
@pytest.mark.parametrize("renormalize", [True, False])
@pytest.mark.parametrize("with_valid", [True, False])
def test_select_experts_runs_on_meta(
    policy: str, scoring: str, renormalize: bool, with_valid: bool
) -> None:
    logits = torch.empty(16, 128, dtype=torch.bfloat16, device=META)
    valid = torch.empty(16, dtype=torch.bool, device=META) if with_valid else None
    w, ids = select_experts(logits, 8, policy, scoring, renormalize, valid)
    assert w.device == META and w.shape == (16, 8) and w.dtype == torch.float32
    assert ids.device == META and ids.shape == (16, 8) and ids.dtype == torch.int64
    count = count_active_experts(ids, valid, num_experts=128)
    assert count.device == META and count.shape == () and count.dtype == torch.int64


def test_lynx_lexicographic_fallback_runs_on_meta() -> None:
    assert not packed_key_fits(64, 12)
    logits = torch.empty(64, 16, device=META)
    valid = torch.empty(64, dtype=torch.bool, device=META)
    w, ids = select_experts(logits, 4, "lynx", valid=valid, alpha=8.0, beta=12)
    assert ids.shape == (64, 4) and w.shape == (64, 4)
