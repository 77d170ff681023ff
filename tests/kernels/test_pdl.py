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
        assert pdl_launch(torch.device("cpu"), "norm") == {"PDL": 0, "launch_pdl": False}


def test_pdl_needs_sm90_and_is_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from lynx.kernels import pdl

    cuda = torch.device("cuda", 0)
    monkeypatch.delenv("LYNX_PDL", raising=False)
    monkeypatch.delenv("LYNX_PDL_WAIT_ONLY", raising=False)
    monkeypatch.setattr(pdl, "_capability", lambda device: (8, 0))
    assert not pdl.pdl_enabled(cuda)
    assert pdl.pdl_launch(cuda, "moe") == {"PDL": 0, "launch_pdl": False}
    monkeypatch.setattr(pdl, "_capability", lambda device: (9, 0))
    assert pdl.pdl_enabled(cuda)  # the default
    # measured default: routing and norms wait without triggering early, the rest trigger
    assert {kind: pdl.pdl_launch(cuda, kind)["PDL"] for kind in pdl.KINDS} == {
        "norm": 2, "gemm": 1, "attention": 1, "rope": 1, "routing": 2, "moe": 1}
    assert all(pdl.pdl_launch(cuda, kind)["launch_pdl"] for kind in pdl.KINDS)
    monkeypatch.setenv("LYNX_PDL_WAIT_ONLY", "")  # every kind triggers early
    assert {pdl.pdl_launch(cuda, kind)["PDL"] for kind in pdl.KINDS} == {1}
    monkeypatch.setenv("LYNX_PDL_WAIT_ONLY", "moe")
    assert pdl.pdl_launch(cuda, "moe")["PDL"] == 2 and pdl.pdl_launch(cuda, "routing")["PDL"] == 1
    monkeypatch.setenv("LYNX_PDL_WAIT_ONLY", "mlp")
    with pytest.raises(ValueError, match="unknown kernel kinds"):
        pdl.pdl_launch(cuda, "moe")
    monkeypatch.delenv("LYNX_PDL_WAIT_ONLY")
    monkeypatch.setenv("LYNX_PDL", "wait")
    assert {pdl.pdl_launch(cuda, kind)["PDL"] for kind in pdl.KINDS} == {2}
    monkeypatch.setenv("LYNX_PDL", "0")
    assert not pdl.pdl_enabled(cuda)
    assert pdl.pdl_launch(cuda, "gemm") == {"PDL": 0, "launch_pdl": False}
    monkeypatch.setenv("LYNX_PDL", "yes")
    with pytest.raises(ValueError, match="LYNX_PDL='yes'"):
        pdl.pdl_enabled(cuda)


def test_dense_gemm_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.zeros(2, 8)
    monkeypatch.delenv("LYNX_DENSE_GEMM", raising=False)
    assert dense_gemm_choice(x) == "cublas"  # auto: cuBLAS beat the skinny kernel, with or without PDL
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
