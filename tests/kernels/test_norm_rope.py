"""RMSNorm / rotary references against transformers, and their Triton kernels (interpreter)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lynx.kernels.rmsnorm import rms_norm, rms_norm_reference
from lynx.kernels.rope import qk_norm_rope, qk_norm_rope_reference


def test_rms_norm_reference_matches_transformers():
    from transformers.models.qwen3.modeling_qwen3 import Qwen3RMSNorm

    hf = Qwen3RMSNorm(64, eps=1e-6)
    with torch.no_grad():
        hf.weight.copy_(1 + 0.1 * torch.randn(64))
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(5, 64, dtype=dtype)
        r = torch.randn(5, 64, dtype=dtype)
        out, res = rms_norm_reference(x, hf.weight.to(dtype), 1e-6, r)
        assert torch.equal(res, x + r)
        assert torch.equal(out, hf.to(dtype)(x + r))


def test_rope_reference_matches_transformers():
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    t, d = 6, 32
    q, k = torch.randn(t, 4, d), torch.randn(t, 2, d)
    pos = torch.tensor([0, 3, 9, 10, 50, 99])
    freqs = torch.arange(128).float()[:, None] * (1.0 / 10000 ** (torch.arange(0, d, 2).float() / d))[None]
    emb = torch.cat((freqs, freqs), dim=-1)
    q1, k1 = qk_norm_rope_reference(q, k, pos, emb.cos(), emb.sin())
    q2, k2 = apply_rotary_pos_emb(q.transpose(0, 1)[None], k.transpose(0, 1)[None], emb.cos()[pos][None], emb.sin()[pos][None])
    assert torch.equal(q1, q2[0].transpose(0, 1)) and torch.equal(k1, k2[0].transpose(0, 1))


def test_cpu_dispatch_uses_reference():
    x, w = torch.randn(3, 16), torch.ones(16)
    assert torch.equal(rms_norm(x, w, 1e-6)[0], rms_norm_reference(x, w, 1e-6)[0])
    q, k = torch.randn(2, 2, 16), torch.randn(2, 1, 16)
    tab = torch.randn(8, 16)
    pos = torch.tensor([1, 5])
    assert all(torch.equal(a, b) for a, b in zip(qk_norm_rope(q, k, pos, tab, tab), qk_norm_rope_reference(q, k, pos, tab, tab)))


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_kernels_in_triton_interpreter():
    cases = Path(__file__).with_name("norm_rope_interpret_cases.py")
    env = dict(os.environ, TRITON_INTERPRET="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(cases)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=cases.parent)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
