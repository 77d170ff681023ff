"""Skinny (decode) GEMM: config, heuristics, dispatch, sm_90 compiles, and the kernel in Triton's interpreter.

The ``test_interp_*`` cases need ``TRITON_INTERPRET=1`` before any ``@triton.jit`` function
is defined, which would leak into the rest of the test process, so
:func:`test_kernel_cases_in_triton_interpreter` reruns this file with ``-k interp`` in a
subprocess with the variable set (as ``test_norm_rope.py`` does); in this process they skip.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lynx.kernels import skinny_gemm as sg
from lynx.kernels.skinny_gemm import (
    SkinnyGemmConfig,
    default_config,
    skinny_linear,
    skinny_linear_reference,
    supports,
)
from lynx.testing.interpreter import assert_interpreted_cases_pass

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
HAS_TRITON = importlib.util.find_spec("triton") is not None
interp_only = pytest.mark.skipif(
    not INTERPRET, reason="needs TRITON_INTERPRET=1 (run by test_kernel_cases_in_triton_interpreter)")

if INTERPRET and HAS_TRITON:
    from lynx.kernels.triton_interpret import patch_interpreter

    patch_interpreter()  # before the kernel module defines its @triton.jit functions

# (K, N) of the shapes the GPU script times
MODEL_SHAPES = {
    "qwen3-30b qkv": (2048, 5120), "qwen3-30b o": (4096, 2048), "qwen3-30b router": (2048, 128),
    "olmoe qkv": (2048, 6144), "olmoe o": (2048, 2048), "olmoe router": (2048, 64),
    "qwen3-4b qkv": (2560, 6144), "qwen3-4b o": (4096, 2560), "qwen3-4b gate_up": (2560, 19456),
    "qwen3-4b down": (9728, 2560), "lm head": (2048, 151936),
}


def _inputs(t: int, n: int, k: int, dtype: torch.dtype, bias: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(t, k, generator=g).to(dtype)
    w = (torch.randn(n, k, generator=g) / k**0.5).to(dtype)  # outputs O(1)
    b = torch.randn(n, generator=g).to(dtype) if bias else None
    return x, w, b


# ----------------------------------------------------------------------------- config, heuristics, dispatch
@pytest.mark.parametrize("bad, match", [
    (dict(block_n=24), "block_n"), (dict(block_n=8), "block_n"), (dict(block_k=2048), "block_k"),
    (dict(split_k=0), "split_k"), (dict(split_k=65), "split_k"), (dict(num_warps=3), "num_warps"),
    (dict(num_stages=0), "num_stages"), (dict(num_stages=9), "num_stages"),
])
def test_config_validation(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SkinnyGemmConfig(**bad)
    with pytest.raises(ValueError, match=match):
        SkinnyGemmConfig().with_(**bad)


def test_config_is_frozen_and_labelled() -> None:
    cfg = SkinnyGemmConfig(block_n=64, block_k=128, split_k=4, num_warps=8, num_stages=2)
    with pytest.raises(AttributeError):
        cfg.block_n = 32  # type: ignore[misc]
    assert cfg.short() == "n64k128s4w8p2"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("t", [1, 16, 33, 64])
@pytest.mark.parametrize("name", sorted(MODEL_SHAPES))
def test_default_config_fills_the_gpu_within_smem(name: str, t: int, dtype: torch.dtype) -> None:
    k, n = MODEL_SHAPES[name]
    cfg = default_config(t, n, k, dtype, 132)
    block_m = sg.block_m_for(t)
    n_tiles, split_k, _ = sg._launch_params(t, n, k, cfg)
    assert split_k == cfg.split_k  # the default never asks for K ranges the launcher would drop
    programs = n_tiles * split_k
    # >= one program per SM, unless the matrix is too small even at the finest split
    assert programs >= 132 or (cfg.block_n == 16 and split_k == sg.MAX_SPLIT_K)
    stage = (block_m + cfg.block_n) * cfg.block_k * dtype.itemsize
    assert cfg.num_stages * stage <= sg.SMEM_BUDGET or cfg.num_stages == 2  # two CTAs per SM
    assert 8 << 10 <= cfg.block_n * cfg.block_k * dtype.itemsize <= 32 << 10 or "router" in name
    if n >= 2048:  # x re-reads from L2 stay below the weight bytes
        assert cfg.block_n >= block_m


@pytest.mark.parametrize("k, block_k, split_k", [(200, 64, 1), (200, 64, 3), (200, 64, 8), (4096, 512, 3),
                                                 (2048, 128, 16), (100, 16, 64), (9728, 512, 5)])
def test_launch_params_cover_k_without_empty_ranges(k: int, block_k: int, split_k: int) -> None:
    cfg = SkinnyGemmConfig(block_n=16, block_k=block_k, split_k=split_k)
    _, s, per = sg._launch_params(4, 64, k, cfg)
    assert per % block_k == 0 and 1 <= s <= split_k
    assert (s - 1) * per < k <= s * per  # every range non-empty, all of K covered


def test_supports_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    x, w = torch.randn(4, 32), torch.randn(16, 32)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert "CUDA" in supports(x, w)
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # CPU tensors are fine for the interpreter
    assert supports(x, w) is None
    assert supports(torch.randn(2, 3, 32), w) is None  # leading dims flatten to T = 6
    assert "T=65" in supports(torch.randn(65, 32), w)
    assert "T=66" in supports(torch.randn(2, 33, 32), w)
    assert "dtype" in supports(x.double(), w.double())
    assert "dtype" in supports(x.int(), w.int())
    assert "weight is" in supports(x, w.bfloat16())
    assert "K mismatch" in supports(x, torch.randn(16, 31))
    assert "weight [N, K]" in supports(x, torch.randn(32))
    assert "unit stride" in supports(torch.randn(32, 4).t(), w)  # [4, 32] with K stride 4
    assert "unit stride" in supports(x, torch.randn(32, 16).t())  # W^T stored: not nn.Linear layout
    assert "empty" in supports(torch.randn(4, 0), torch.randn(16, 0))


def test_launcher_rejects_bad_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")  # device check passes; errors come before any launch
    x, w = torch.randn(4, 32), torch.randn(16, 32)
    with pytest.raises(ValueError, match="T=65"):
        sg.skinny_linear_triton(torch.randn(65, 32), w)
    with pytest.raises(ValueError, match="out_dtype"):
        sg.skinny_linear_triton(x, w, out_dtype=torch.int32)
    with pytest.raises(ValueError, match="bias"):
        sg.skinny_linear_triton(x, w, bias=torch.randn(15))


def test_cpu_dispatch_uses_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    x, w, b = _inputs(5, 24, 40, torch.bfloat16, True)
    for bias in (None, b):
        for out_dtype in (None, torch.float32):
            out = skinny_linear(x, w, bias, out_dtype)
            assert out.dtype == (out_dtype or x.dtype)
            assert torch.equal(out, skinny_linear_reference(x, w, bias, out_dtype))
    x3 = x.view(1, 5, 40)
    assert skinny_linear(x3, w).shape == (1, 5, 24)


def test_reference_matches_f_linear() -> None:
    x, w, b = _inputs(7, 30, 50, torch.float32, True)
    torch.testing.assert_close(skinny_linear_reference(x, w, b), F.linear(x, w, b), rtol=1e-6, atol=1e-6)
    xb, wb, bb = x.bfloat16(), w.bfloat16(), b.bfloat16()
    out = skinny_linear_reference(xb, wb, bb, torch.float32)  # fp32 logits from bf16 inputs: no rounding
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, F.linear(xb.float(), wb.float(), bb.float()), rtol=1e-6, atol=1e-6)
    assert skinny_linear_reference(xb, wb).dtype == torch.bfloat16


# ----------------------------------------------------------------------------- sm_90 compiles (no GPU needed)
SM90_SMEM = 232448  # bytes of shared memory one CTA may use on H100/H200
needs_compiler = pytest.mark.skipif(not HAS_TRITON or INTERPRET,
                                    reason="needs triton, compiled (not interpreted) in this process")


def compile_sm90(t: int, n: int, k: int, cfg: SkinnyGemmConfig, dtype: str = "bf16", out: str = "bf16",
                 bias: bool = False, pdl: bool = False):
    """The kernel as the launcher specialises it (16-byte aligned pointers, N/K/strides % 16 == 0)."""
    from triton import compile as triton_compile
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from lynx.kernels.skinny_gemm_triton import skinny_gemm_kernel

    sig = {"x_ptr": f"*{dtype}", "w_ptr": f"*{dtype}", "b_ptr": f"*{out}", "out_ptr": f"*{out}", "part_ptr": "*fp32",
           "counter_ptr": "*i32", "T": "i32", "N": "i32", "K": "i32", "num_splits": "i32", "k_per_split": "i32",
           "stride_xm": "i32", "stride_wn": "i32", "stride_om": "i32", "HAS_BIAS": "constexpr", "EVEN_K": "constexpr",
           "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr", "SPLIT": "constexpr",
           "REDUCE_UNROLL": "constexpr",
           "DOT_PRECISION": "constexpr"}
    sig.update(PDL="constexpr", PREFETCH_BYTES="constexpr")
    div16 = {name for name in sig if name.endswith("_ptr") or name in ("N", "K", "k_per_split") or
             name.startswith("stride")}
    attrs = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(sig) if name in div16}
    _, split_k, _ = sg._launch_params(t, n, k, cfg)
    block_m = sg.block_m_for(t)
    consts = dict(HAS_BIAS=bias, EVEN_K=k % cfg.block_k == 0, BLOCK_M=block_m, BLOCK_N=cfg.block_n,
                  BLOCK_K=cfg.block_k, SPLIT=split_k > 1, REDUCE_UNROLL=sg.reduce_unroll(block_m, cfg),
                  DOT_PRECISION="ieee" if dtype == "fp32" else "tf32")
    consts.update(PDL=int(pdl), PREFETCH_BYTES=(2 if dtype == "bf16" else 4) if pdl else 0)
    src = ASTSource(fn=skinny_gemm_kernel, signature=sig, constexprs=consts, attrs=attrs)
    return triton_compile(src, target=GPUTarget("cuda", 90, 32),
                          options=dict(num_warps=cfg.num_warps, num_stages=cfg.num_stages, launch_pdl=pdl))


def no_spills(ptx: str) -> bool:
    """ptxas (shipped with Triton) reports no spill stores for this PTX (True if it is missing)."""
    import shutil
    import tempfile

    import triton

    ptxas = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
    if not ptxas.exists() and shutil.which("ptxas") is None:
        return True
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "k.ptx"
        src.write_text(ptx)
        proc = subprocess.run([str(ptxas if ptxas.exists() else "ptxas"), "-v", "--gpu-name=sm_90a", str(src),
                               "-o", str(Path(tmp) / "k.cubin")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return " 0 bytes spill stores" in proc.stderr


@needs_compiler
@pytest.mark.parametrize("name, t, out", [("qwen3-30b qkv", 1, "bf16"), ("qwen3-30b qkv", 64, "bf16"),
                                          ("qwen3-30b o", 1, "bf16"), ("qwen3-30b o", 64, "bf16"),
                                          ("qwen3-30b router", 16, "fp32"),
                                          ("lm head", 1, "bf16")])
def test_default_configs_compile_pipelined_for_sm90(name: str, t: int, out: str) -> None:
    k, n = MODEL_SHAPES[name]
    cfg = default_config(t, n, k, torch.bfloat16, 132)
    kernel = compile_sm90(t, n, k, cfg, out=out)
    ptx, ttgir = kernel.asm["ptx"], kernel.asm["ttgir"]
    assert kernel.metadata.shared <= SM90_SMEM // 2 - 1024, kernel.metadata.shared  # two CTAs per SM
    assert "async_copy_global_to_local" in ttgir, "weight loads are not software-pipelined"
    assert "cp.async.cg.shared.global" in ptx and ", 0x10," in ptx, "no 16-byte async weight loads"
    assert no_spills(ptx), "register spills"
    if cfg.split_k > 1:  # counter with acquire-release ordering, partials re-read from L2
        assert "atom.global.gpu.acq_rel.add" in ptx or "atom.acq_rel.gpu.global.add" in ptx
        assert "ld.global.cg" in ptx
    else:
        assert "atom." not in ptx


@needs_compiler
@pytest.mark.parametrize("name, t", [("qwen3-30b qkv", 16), ("qwen3-30b o", 64), ("qwen3-30b router", 16)])
def test_pdl_variant_prefetches_weights_then_waits_before_reading_x(name: str, t: int) -> None:
    """With PDL the program may run while the previous kernel still writes x: its only
    memory accesses before ``griddepcontrol.wait`` are the L2 bulk prefetches of its own
    weight rows; the trigger comes first, the pipelined main loop after the wait."""
    k, n = MODEL_SHAPES[name]
    cfg = default_config(t, n, k, torch.bfloat16, 132)
    from lynx.testing.ptx import assert_pdl_waits_first

    ptx = compile_sm90(t, n, k, cfg, pdl=True).asm["ptx"]
    assert_pdl_waits_first(ptx, allowed_before=("cp.async.bulk.prefetch.L2.global",))
    body = ptx[ptx.index(".entry"):]
    wait, trigger = body.index("griddepcontrol.wait"), body.index("griddepcontrol.launch_dependents")
    assert body.index("cp.async.bulk.prefetch.L2.global") < trigger < wait
    assert "cp.async.cg.shared.global" in body[wait:], "main loop not pipelined after the wait"
    plain = compile_sm90(t, n, k, cfg).asm["ptx"]
    assert "griddepcontrol" not in plain and "cp.async.bulk.prefetch" not in plain  # PDL off: no change


@needs_compiler
def test_fp32_ragged_and_bias_variants_compile() -> None:
    compile_sm90(33, 100, 200, SkinnyGemmConfig(block_n=32, block_k=64, split_k=3), dtype="fp32", out="fp32",
                 bias=True)
    compile_sm90(3, 128, 2048, SkinnyGemmConfig(block_n=16, block_k=128, split_k=16), out="fp32", bias=True)


# ----------------------------------------------------------------------------- kernel in the interpreter
BF16, FP16, FP32 = torch.bfloat16, torch.float16, torch.float32
INTERP_CASES = [  # (T, N, K, dtype, bias, out_dtype, config or None = default)
    (1, 100, 200, FP32, False, None, SkinnyGemmConfig(block_n=32, block_k=64)),
    (3, 70, 300, FP32, True, FP32, SkinnyGemmConfig(block_n=16, block_k=64, split_k=3)),
    (16, 96, 256, BF16, False, FP32, SkinnyGemmConfig(block_n=32, block_k=64, split_k=4)),
    (33, 50, 130, FP32, True, None, SkinnyGemmConfig(block_n=32, block_k=32, split_k=2)),
    (64, 128, 192, BF16, True, None, SkinnyGemmConfig(block_n=64, block_k=64, split_k=3)),
    (64, 40, 96, FP16, False, FP32, SkinnyGemmConfig(block_n=16, block_k=32)),
    (3, 48, 512, BF16, True, BF16, None),
    (1, 24, 64, FP32, False, None, SkinnyGemmConfig(block_n=16, block_k=16, split_k=8)),
    (16, 72, 160, BF16, False, BF16, SkinnyGemmConfig(block_n=16, block_k=32, split_k=5)),
]


def _tolerance(dtype: torch.dtype, out_dtype: torch.dtype) -> dict:
    if out_dtype == FP32 or dtype == FP32:  # products of bf16/fp16 are exact in fp32: only the order differs
        return dict(rtol=1e-5, atol=1e-5)
    return dict(rtol=1.6e-2, atol=1e-2)  # one rounding of the output, either way


@interp_only
@pytest.mark.parametrize("t, n, k, dtype, bias, out_dtype, cfg", INTERP_CASES)
def test_interp_kernel_matches_reference(t: int, n: int, k: int, dtype: torch.dtype, bias: bool,
                                         out_dtype: torch.dtype | None, cfg: SkinnyGemmConfig | None) -> None:
    x, w, b = _inputs(t, n, k, dtype, bias, seed=t * n + k)
    out = sg.skinny_linear_triton(x, w, b, out_dtype, cfg)
    ref = skinny_linear_reference(x, w, b, out_dtype)
    assert out.shape == (t, n) and out.dtype == (out_dtype or dtype)
    torch.testing.assert_close(out, ref, **_tolerance(dtype, out.dtype))
    again = sg.skinny_linear_triton(x, w, b, out_dtype, cfg)
    assert torch.equal(out, again)  # deterministic: split-K partials summed in a fixed order
    counters = sg._counters.get(x.device)
    assert counters is None or not counters.any()  # every call leaves the split-K counters zeroed


@interp_only
@pytest.mark.parametrize("split_k", [1, 3])
def test_interp_strided_views_and_leading_dims(split_k: int) -> None:
    g = torch.Generator().manual_seed(split_k)
    big_x = torch.randn(6, 200, generator=g)
    big_w = torch.randn(40, 160, generator=g) / 12
    x = big_x[:, 8:136].view(2, 3, 128)[:, :, :]  # [2, 3, 128]: row stride 200, unit K stride
    w = big_w[:, 16:144]  # [40, 128]: row stride 160 (a slice of a fused weight)
    cfg = SkinnyGemmConfig(block_n=16, block_k=32, split_k=split_k)
    out = skinny_linear(x, w, config=cfg)
    assert out.shape == (2, 3, 40)
    torch.testing.assert_close(out, skinny_linear_reference(x, w), rtol=1e-5, atol=1e-5)


@interp_only
def test_interp_dispatch_and_empty_batch() -> None:
    x, w, b = _inputs(5, 32, 64, FP32, True)
    cfg = SkinnyGemmConfig(block_n=16, block_k=32, split_k=2)
    assert torch.equal(skinny_linear(x, w, b, config=cfg), sg.skinny_linear_triton(x, w, b, config=cfg))
    big = torch.randn(65, 64)  # T > 64: the reference path (CPU)
    assert torch.equal(skinny_linear(big, w, b), skinny_linear_reference(big, w, b))
    empty = sg.skinny_linear_triton(torch.randn(0, 64), w, b, torch.float32)
    assert empty.shape == (0, 32) and empty.dtype == torch.float32


# ----------------------------------------------------------------------------- runs the cases above
@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed (optional)")
@pytest.mark.skipif(INTERPRET, reason="this is the interpreter run itself")
def test_kernel_cases_in_triton_interpreter() -> None:
    assert_interpreted_cases_pass(__file__, "test_interp_")
