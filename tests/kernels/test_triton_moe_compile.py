"""Compile the Triton kernels for an H200 (sm_90) on a CPU-only machine.

Triton compiles ahead of time without a GPU given an explicit target (its wheel ships
ptxas). This catches what the interpreter cannot: lowering errors, shared memory over the
sm_90 limit (and over half of it for the GEMMs, whose grid assumes two CTAs per SM), the
fused k-sum's acquire-release counter, and -- the performance-critical part -- whether the
weight loads of the GEMM kernels are software-pipelined (``cp.async`` multi-buffering) also
behind the in-kernel metadata prologue; without it a memory-bound decode kernel runs at a
fraction of HBM bandwidth. Pointers are declared 16-byte aligned
and strides divisible by 16, as Triton's JIT specialises them for the real tensors.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed (optional)"),
    pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1", reason="kernels are interpreted in this process"),
]

SM90_SMEM = 232448  # bytes of shared memory one CTA may use on H100/H200
QWEN3 = dict(H=2048, I=768, E=128, k=8)


def compile_sm90(fn, signature: dict[str, str], constexprs: dict, warps: int, stages: int,  # noqa: ANN001, ANN201
                 pdl: bool = False):
    from triton import compile as triton_compile
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    if pdl:  # programmatic dependent launch: trigger, then wait (lynx.kernels.pdl)
        signature, constexprs = {**signature, "PDL": "constexpr"}, {**constexprs, "PDL": 1}

    aligned = {(i,): [["tt.divisibility", 16]] for i, (name, ty) in enumerate(signature.items())
               if ty.startswith("*") or name.startswith("stride")}
    src = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=aligned)
    return triton_compile(src, target=GPUTarget("cuda", 90, 32),
                          options=dict(num_warps=warps, num_stages=stages, launch_pdl=pdl))


def gemm_signatures(dtype: str) -> tuple[dict[str, str], dict[str, str]]:
    ptr, idx = f"*{dtype}", "*i32"
    meta = {"sorted_ptr": idx, "block_expert_ptr": idx, "num_slots_ptr": idx}
    tiles = {"H": "constexpr", "I": "constexpr", "TOP_K": "constexpr", "grid_m": "i32", "BLOCK_M": "constexpr",
             "BLOCK_N": "constexpr", "BLOCK_K": "constexpr", "DOT_PRECISION": "constexpr",
             "FUSED_ALIGN": "constexpr", "NUM_EXPERTS": "constexpr", "E_POW2": "constexpr",
             "P_POW2": "constexpr", "LOCAL_BLOCKS": "constexpr"}
    gate_up = {"x_ptr": ptr, "w13_ptr": ptr, "inter_ptr": ptr, "ids_ptr": "*i64", "weights_ptr": "*fp32",
               "table_ptr": idx, **meta,
               "counter_ptr": idx, "num_counters": "i32", "num_pairs": "i32", "stride_x": "i32",
               "stride_we": "i32", "stride_wn": "i32", "stride_inter": "i32", **tiles, "NUM_COUNTERS": "constexpr"}
    down = {"inter_ptr": ptr, "w2_ptr": ptr, "weights_ptr": "*fp32", "pair_out_ptr": "*fp32", "ids_ptr": "*i64",
            "table_ptr": idx, **meta, "out_ptr": ptr, "counter_ptr": idx, "num_pairs": "i32", "num_tokens": "i32",
            "stride_inter": "i32", "stride_we": "i32", "stride_wn": "i32", "stride_out": "i32", **tiles,
            "FUSE_SUM": "constexpr", "BLOCK_T": "constexpr"}
    return gate_up, down


def compile_default_gemms(batch: int, fused: bool | None = None, pdl: bool = False) -> list:
    """Both GEMM kernels as ``fused_experts_triton`` launches them for the Qwen3 shape at ``batch``."""
    from lynx.kernels.moe_config import default_config, grid_m
    from lynx.kernels.triton_moe_align import SMALL_MAX_PAIRS, align_params
    from lynx.kernels.triton_moe_gemm import down_weighted_kernel, gate_up_silu_kernel

    cfg = default_config(batch, QWEN3["H"], QWEN3["I"])
    pairs = batch * QWEN3["k"]
    fused = (cfg.align == "fused" and pairs <= SMALL_MAX_PAIRS) if fused is None else fused
    prm = align_params(pairs, QWEN3["E"], cfg.block_m)
    gate_sig, down_sig = gemm_signatures("bf16")
    shape = dict(H=QWEN3["H"], I=QWEN3["I"], TOP_K=QWEN3["k"], BLOCK_M=cfg.block_m, DOT_PRECISION="tf32",
                 FUSED_ALIGN=fused, NUM_EXPERTS=QWEN3["E"], E_POW2=prm.e_pow2, P_POW2=prm.p_pow2)
    n_tiles1, n_tiles2 = -(-QWEN3["I"] // cfg.block_n1), -(-QWEN3["H"] // cfg.block_n2)
    local = [1 << (-(-prm.max_blocks // grid_m(prm.max_blocks, n, 132, ctas)) - 1).bit_length()
             for n, ctas in ((n_tiles1, cfg.ctas_per_sm), (n_tiles2, cfg.down_ctas_per_sm))]  # as triton_moe, H200
    return [
        compile_sm90(gate_up_silu_kernel, gate_sig,
                     dict(shape, BLOCK_N=cfg.block_n1, BLOCK_K=cfg.block_k1, LOCAL_BLOCKS=local[0],
                          NUM_COUNTERS=n_tiles2 if cfg.fuse_sum else 0), cfg.warps1, cfg.stages1, pdl),
        compile_sm90(down_weighted_kernel, down_sig,
                     dict(shape, BLOCK_N=cfg.block_n2, BLOCK_K=cfg.block_k2, LOCAL_BLOCKS=local[1],
                          FUSE_SUM=cfg.fuse_sum, BLOCK_T=min(64, 2048 // cfg.block_n2)), cfg.warps2, cfg.stages2,
                     pdl),
    ]


@pytest.mark.parametrize("batch", [1, 16, 32, 64, 256])
def test_default_configs_compile_and_pipeline(batch: int) -> None:
    from lynx.kernels.moe_config import default_config

    cfg = default_config(batch, QWEN3["H"], QWEN3["I"])
    for kernel, ctas in zip(compile_default_gemms(batch), (cfg.ctas_per_sm, cfg.down_ctas_per_sm)):
        # the persistent grid assumes `ctas` CTAs per SM: each may use at most that share of its memory
        assert kernel.metadata.shared <= SM90_SMEM // max(ctas, 1) - 1024, (ctas, kernel.metadata.shared)
        assert "async_copy_global_to_local" in kernel.asm["ttgir"], "weight loads are not pipelined"
        assert "cp.async.cg.shared.global" in kernel.asm["ptx"]


@pytest.mark.parametrize("batch", [16, 64])
def test_pdl_variants_wait_before_touching_memory(batch: int) -> None:
    """With PDL the GEMM programs may run beside the routing kernel: no global access before
    the wait, and the weight loads still software-pipelined after it."""
    from lynx.testing.ptx import assert_pdl_waits_first

    for kernel in compile_default_gemms(batch, pdl=True):
        assert_pdl_waits_first(kernel.asm["ptx"])
        assert "cp.async.cg.shared.global" in kernel.asm["ptx"]


def test_fused_prologue_keeps_pipelining_and_atomics_ordered() -> None:
    gate, down = compile_default_gemms(16, fused=True)
    assert "histogram" in gate.asm["ttgir"]  # the block metadata is derived in the kernel
    for kernel in (gate, down):  # the block table is re-read through the coherent path (not ld.global.nc)
        assert ".nc" not in kernel.asm["ptx"]
    ptx = down.asm["ptx"]
    # fused k-sum: a CTA barrier, then the tile counter's acquire-release atomic, then L2 loads
    assert "atom.global.gpu.acq_rel.add" in ptx or "atom.acq_rel.gpu.global.add" in ptx, "no acq_rel counter"
    assert "ld.global.cg" in ptx
    unfused_gate, _ = compile_default_gemms(16, fused=False)
    assert "histogram" not in unfused_gate.asm["ttgir"]


def test_fp32_and_ragged_shapes_compile() -> None:
    from lynx.kernels.triton_moe_gemm import down_weighted_kernel, gate_up_silu_kernel

    gate_sig, down_sig = gemm_signatures("fp32")
    tiles = dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=32, DOT_PRECISION="ieee", FUSED_ALIGN=True, NUM_EXPERTS=6,
                 E_POW2=32, P_POW2=128, LOCAL_BLOCKS=4)
    compile_sm90(gate_up_silu_kernel, gate_sig, dict(tiles, H=80, I=48, TOP_K=3, NUM_COUNTERS=8), 4, 3)
    compile_sm90(down_weighted_kernel, down_sig, dict(tiles, H=80, I=48, TOP_K=3, FUSE_SUM=True, BLOCK_T=16), 4, 3)


@pytest.mark.parametrize("pairs,experts,block_m", [(8, 8, 16), (128, 128, 16), (512, 128, 64), (1024, 256, 32),
                                                    (48, 600, 16)])
def test_align_kernels_compile(pairs: int, experts: int, block_m: int) -> None:
    from lynx.kernels import triton_moe_align as ta

    prm = ta.align_params(pairs, experts, block_m)
    ptrs = {"ids_ptr": "*i64", "weights_ptr": "*fp32"}
    out = {"sorted_ptr": "*i32", "block_expert_ptr": "*i32", "num_slots_ptr": "*i32"}
    small = compile_sm90(ta._align_small_kernel, {**ptrs, **out, "num_pairs": "i32", "max_blocks": "i32",
                                                  "NUM_EXPERTS": "constexpr", "E_POW2": "constexpr",
                                                  "BLOCK_M": "constexpr", "P_POW2": "constexpr",
                                                  "FILL": "constexpr"},
                         dict(NUM_EXPERTS=experts, E_POW2=prm.e_pow2, BLOCK_M=block_m, P_POW2=prm.p_pow2,
                              FILL=ta._FILL), 4, 1)
    hist = compile_sm90(ta._align_hist_kernel, {**ptrs, "hist_ptr": "*i32", "sorted_ptr": "*i32", "num_pairs": "i32",
                                                "max_slots": "i32", "NUM_EXPERTS": "constexpr", "E_POW2": "constexpr",
                                                "CHUNK": "constexpr", "FILL": "constexpr"},
                        dict(NUM_EXPERTS=experts, E_POW2=prm.e_pow2, CHUNK=ta._CHUNK, FILL=ta._FILL), 2, 1)
    rows = max(1, min(64, 4096 // prm.e_pow2))
    scan = compile_sm90(ta._align_scan_kernel, {"hist_ptr": "*i32", "base_ptr": "*i32", "block_expert_ptr": "*i32",
                                                "num_slots_ptr": "*i32", "num_chunks": "i32", "max_blocks": "i32",
                                                "E_POW2": "constexpr", "BLOCK_M": "constexpr", "ROWS": "constexpr",
                                                "BROWS": "constexpr"},
                        dict(E_POW2=prm.e_pow2, BLOCK_M=block_m, ROWS=rows, BROWS=rows), 4, 1)
    scatter = compile_sm90(ta._align_scatter_kernel, {**ptrs, "base_ptr": "*i32", "sorted_ptr": "*i32",
                                                      "num_pairs": "i32", "NUM_EXPERTS": "constexpr",
                                                      "E_POW2": "constexpr", "CHUNK": "constexpr"},
                           dict(NUM_EXPERTS=experts, E_POW2=prm.e_pow2, CHUNK=ta._CHUNK), 2, 1)
    for kernel in (small, hist, scan, scatter):
        assert kernel.metadata.shared <= SM90_SMEM


def test_legacy_align_and_sum_kernels_compile() -> None:
    from lynx.kernels.moe_align_legacy import _moe_align_kernel
    from lynx.kernels.triton_moe_gemm import sum_topk_kernel

    align_sig = {"ids_ptr": "*i64", "weights_ptr": "*fp32", "sorted_ptr": "*i32", "block_expert_ptr": "*i32",
                 "num_slots_ptr": "*i32", "num_pairs": "i32", "max_blocks": "i32", "max_slots": "i32",
                 "NUM_EXPERTS": "constexpr", "E_POW2": "constexpr", "BLOCK_M": "constexpr", "CHUNK": "constexpr",
                 "FILL": "constexpr"}
    compiled = compile_sm90(_moe_align_kernel, align_sig, dict(NUM_EXPERTS=128, E_POW2=128, BLOCK_M=16,
                                                               CHUNK=32, FILL=1024), 4, 1)
    assert compiled.metadata.shared <= SM90_SMEM
    sum_sig = {"pair_out_ptr": "*fp32", "weights_ptr": "*fp32", "out_ptr": "*bf16", "H": "constexpr",
               "TOP_K": "constexpr", "BLOCK_H": "constexpr"}
    summed = compile_sm90(sum_topk_kernel, sum_sig, dict(H=2048, TOP_K=8, BLOCK_H=1024), 4, 1)
    assert "ld.global.v4" in summed.asm["ptx"]  # the k-sum streams fp32 rows as 16-byte loads
