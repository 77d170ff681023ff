"""Programmatic dependent launch switches and the dense-GEMM choice (CPU side; the device
side is checked by compiling for sm_90 in test_skinny_gemm.py and on the GPU by
scripts/gpu_pdl_check.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lynx.kernels.dense import dense_gemm_choice, dense_linear
from lynx.kernels.pdl import pdl_enabled, pdl_launch
from lynx.kernels.skinny_gemm import prefetch_bytes


def test_pdl_never_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("0", "1"):
        monkeypatch.setenv("LYNX_PDL", value)
        assert not pdl_enabled(torch.device("cpu"))
        assert pdl_launch(torch.device("cpu")) == {"PDL": False, "launch_pdl": False}


def test_pdl_needs_sm90(monkeypatch: pytest.MonkeyPatch) -> None:
    import lynx.kernels.pdl as pdl

    monkeypatch.setattr(pdl, "_capability", lambda device: (8, 0))
    monkeypatch.setenv("LYNX_PDL", "1")
    assert not pdl.pdl_enabled(torch.device("cuda", 0))
    monkeypatch.setattr(pdl, "_capability", lambda device: (9, 0))
    assert pdl.pdl_enabled(torch.device("cuda", 0))
    assert pdl.pdl_launch(torch.device("cuda", 0)) == {"PDL": True, "launch_pdl": True}
    monkeypatch.setenv("LYNX_PDL", "0")
    assert not pdl.pdl_enabled(torch.device("cuda", 0))


def test_dense_gemm_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    import lynx.kernels.dense as dense

    x = torch.zeros(2, 8)
    monkeypatch.delenv("LYNX_DENSE_GEMM", raising=False)
    assert dense_gemm_choice(x) == "cublas"  # auto without PDL
    monkeypatch.setattr(dense, "pdl_enabled", lambda device: True)
    assert dense_gemm_choice(x) == "skinny"  # auto with PDL: only our kernel can start early
    for forced in ("cublas", "skinny"):
        monkeypatch.setenv("LYNX_DENSE_GEMM", forced)
        assert dense_gemm_choice(x) == forced
    monkeypatch.setenv("LYNX_DENSE_GEMM", "cutlass")
    with pytest.raises(ValueError, match="LYNX_DENSE_GEMM='cutlass'"):
        dense_gemm_choice(x)


@pytest.mark.parametrize("choice", ["auto", "cublas", "skinny"])
def test_dense_linear_on_cpu_is_f_linear(monkeypatch: pytest.MonkeyPatch, choice: str) -> None:
    monkeypatch.setenv("LYNX_DENSE_GEMM", choice)
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(3, 16, generator=g), torch.randn(24, 16, generator=g), torch.randn(24, generator=g)
    assert torch.equal(dense_linear(x, w, b), F.linear(x, w, b))
    assert torch.equal(dense_linear(x, w), F.linear(x, w))


def test_prefetch_bytes_needs_16_byte_runs() -> None:
    w = torch.zeros(64, 2048 + 8, dtype=torch.bfloat16)
    assert prefetch_bytes(w[:, :2048]) == 2  # rows of 4096 bytes, stride 4112 bytes
    assert prefetch_bytes(w[:, 1:2049]) == 0  # rows start 2 bytes past 16-byte alignment
    assert prefetch_bytes(torch.zeros(8, 100, dtype=torch.bfloat16)) == 0  # 200-byte rows
    assert prefetch_bytes(torch.zeros(8, 100, dtype=torch.float32)) == 4  # 400-byte rows
