"""RMSNorm and q/k-norm + rotary Triton kernels in the interpreter (run by test_norm_rope.py)."""

from __future__ import annotations

import os

import pytest
import torch

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("needs TRITON_INTERPRET=1 (run via test_norm_rope.py)", allow_module_level=True)
pytest.importorskip("triton")

from lynx.kernels.triton_interpret import patch_interpreter  # noqa: E402

patch_interpreter()

from lynx.kernels.rmsnorm import rms_norm_reference  # noqa: E402
from lynx.kernels.rmsnorm_triton import rms_norm_triton  # noqa: E402
from lynx.kernels.rope import qk_norm_rope_reference  # noqa: E402
from lynx.kernels.rope_triton import qk_norm_rope_triton  # noqa: E402


@pytest.mark.parametrize("rows, d, residual", [(1, 32, False), (7, 96, True), (16, 256, True), (3, 40, False)])
def test_rms_norm_kernel_matches_reference(rows, d, residual):
    g = torch.Generator().manual_seed(rows * d)
    x = torch.randn(rows, d, generator=g)
    w = 1 + 0.1 * torch.randn(d, generator=g)
    r = torch.randn(rows, d, generator=g) if residual else None
    out, res = rms_norm_triton(x, w, 1e-6, r)
    ref, ref_res = rms_norm_reference(x, w, 1e-6, r)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    if residual:
        torch.testing.assert_close(res, ref_res)


@pytest.mark.parametrize("t, hq, hkv, d, norm", [(1, 4, 2, 16, True), (5, 8, 2, 32, False), (9, 4, 4, 64, True)])
def test_qk_norm_rope_kernel_matches_reference(t, hq, hkv, d, norm):
    g = torch.Generator().manual_seed(t + d)
    qkv = torch.randn(t, (hq + 2 * hkv) * d, generator=g)
    q, k, _ = qkv.split([hq * d, hkv * d, hkv * d], dim=-1)
    q, k = q.view(t, hq, d), k.view(t, hkv, d)  # strided views of one buffer, as in the model
    pos = torch.randint(0, 100, (t,), generator=g)
    freqs = torch.arange(128).float()[:, None] * (1.0 / 10000 ** (torch.arange(0, d, 2).float() / d))[None]
    emb = torch.cat((freqs, freqs), dim=-1)
    qw = 1 + 0.1 * torch.randn(d, generator=g) if norm else None
    kw = 1 + 0.1 * torch.randn(d, generator=g) if norm else None
    q1, k1 = qk_norm_rope_triton(q, k, pos, emb.cos(), emb.sin(), qw, kw, 1e-6)
    q2, k2 = qk_norm_rope_reference(q, k, pos, emb.cos(), emb.sin(), qw, kw, 1e-6)
    torch.testing.assert_close(q1, q2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(k1, k2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("norm", [True, False])
def test_qk_norm_rope_kernel_stores_kv_in_the_paged_cache(norm):
    from lynx.kernels.rope import store_kv

    g = torch.Generator().manual_seed(11)
    t, hq, hkv, d, blocks, bs = 6, 4, 2, 16, 5, 4
    qkv = torch.randn(t, (hq + 2 * hkv) * d, generator=g)
    q, k, v = qkv.split([hq * d, hkv * d, hkv * d], dim=-1)
    q, k, v = q.view(t, hq, d), k.view(t, hkv, d), v.view(t, hkv, d)
    pos = torch.randint(0, 50, (t,), generator=g)
    slots = torch.randperm(blocks * bs, generator=g)[:t]
    freqs = torch.arange(64).float()[:, None] * (1.0 / 10000 ** (torch.arange(0, d, 2).float() / d))[None]
    emb = torch.cat((freqs, freqs), dim=-1)
    qw = 1 + 0.1 * torch.randn(d, generator=g) if norm else None
    kw = 1 + 0.1 * torch.randn(d, generator=g) if norm else None
    kc, vc = torch.full((blocks, bs, hkv, d), float("nan")), torch.full((blocks, bs, hkv, d), float("nan"))
    kc_ref, vc_ref = kc.clone(), vc.clone()
    q1, k1 = qk_norm_rope_triton(q, k, pos, emb.cos(), emb.sin(), qw, kw, 1e-6, v, kc, vc, slots)
    q2, k2 = qk_norm_rope_reference(q, k, pos, emb.cos(), emb.sin(), qw, kw, 1e-6)
    store_kv(k2, v, kc_ref, vc_ref, slots)
    torch.testing.assert_close(q1, q2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(kc, kc_ref, rtol=1e-5, atol=1e-5, equal_nan=True)
    torch.testing.assert_close(vc, vc_ref, equal_nan=True)
    assert torch.isnan(kc).sum() == kc.numel() - t * hkv * d  # nothing else written
