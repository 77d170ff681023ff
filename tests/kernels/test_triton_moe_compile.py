"""Compile the Triton kernels for an H200 (sm_90) on a CPU-only machine.

Triton compiles ahead of time without a GPU given an explicit target (its wheel ships
ptxas). This catches what the interpreter cannot: lowering errors, shared memory over the
sm_90 limit, and -- the performance-critical part -- whether the weight loads of the GEMM
kernels are software-pipelined (``cp.async`` multi-buffering); without it a memory-bound
decode kernel runs at a fraction of HBM bandwidth. Pointers are declared 16-byte aligned
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


def compile_sm90(fn, signature: dict[str, str], constexprs: dict, warps: int, stages: int):  # noqa: ANN001, ANN201
    from triton import compile as triton_compile
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    aligned = {(i,): [["tt.divisibility", 16]] for i, (name, ty) in enumerate(signature.items())
               if ty.startswith("*") or name.startswith("stride")}
    src = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=aligned)
    return triton_compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps, num_stages=stages))


def gemm_signatures(dtype: str) -> tuple[dict[str, str], dict[str, str]]:
    ptr, idx = f"*{dtype}", "*i32"
    common = {"sorted_ptr": idx, "block_expert_ptr": idx, "num_slots_ptr": idx, "num_pairs": "i32"}
    gate_up = {"x_ptr": ptr, "w13_ptr": ptr, "inter_ptr": ptr, **common, "stride_x": "i32", "stride_we": "i32",
               "stride_wn": "i32", "stride_inter": "i32", "H": "constexpr", "I": "constexpr", "TOP_K": "constexpr",
               "grid_m": "i32", "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr",
               "DOT_PRECISION": "constexpr"}
    down = {"inter_ptr": ptr, "w2_ptr": ptr, "weights_ptr": "*fp32", "pair_out_ptr": "*fp32", **common,
            "stride_inter": "i32", "stride_we": "i32", "stride_wn": "i32", "stride_out": "i32", "H": "constexpr",
            "I": "constexpr", "grid_m": "i32", "BLOCK_M": "constexpr", "BLOCK_N": "constexpr",
            "BLOCK_K": "constexpr", "DOT_PRECISION": "constexpr"}
    return gate_up, down


@pytest.mark.parametrize("batch", [1, 16, 64, 256])
def test_default_configs_compile_and_pipeline(batch: int) -> None:
    from lynx.kernels.moe_config import default_config
    from lynx.kernels.triton_moe_gemm import down_weighted_kernel, gate_up_silu_kernel

    cfg = default_config(batch, QWEN3["H"], QWEN3["I"])
    gate_sig, down_sig = gemm_signatures("bf16")
    shape = dict(H=QWEN3["H"], I=QWEN3["I"], BLOCK_M=cfg.block_m, DOT_PRECISION="tf32")
    kernels = [
        compile_sm90(gate_up_silu_kernel, gate_sig, dict(shape, TOP_K=QWEN3["k"], BLOCK_N=cfg.block_n1,
                                                         BLOCK_K=cfg.block_k1), cfg.warps1, cfg.stages1),
        compile_sm90(down_weighted_kernel, down_sig, dict(shape, BLOCK_N=cfg.block_n2, BLOCK_K=cfg.block_k2),
                     cfg.warps2, cfg.stages2),
    ]
    for kernel in kernels:
        assert kernel.metadata.shared <= SM90_SMEM
        assert "async_copy_global_to_local" in kernel.asm["ttgir"], "weight loads are not pipelined"
        assert "cp.async.cg.shared.global" in kernel.asm["ptx"]


def test_fp32_and_ragged_shapes_compile() -> None:
    from lynx.kernels.triton_moe_gemm import down_weighted_kernel, gate_up_silu_kernel

    gate_sig, down_sig = gemm_signatures("fp32")
    tiles = dict(BLOCK_M=16, BLOCK_N=16, BLOCK_K=32, DOT_PRECISION="ieee")
    compile_sm90(gate_up_silu_kernel, gate_sig, dict(tiles, H=80, I=48, TOP_K=3), 4, 3)
    compile_sm90(down_weighted_kernel, down_sig, dict(tiles, H=80, I=48), 4, 3)


@pytest.mark.parametrize("experts,chunk,warps", [(8, 256, 4), (128, 32, 4), (128, 64, 8), (512, 16, 4)])
def test_align_and_sum_kernels_compile(experts: int, chunk: int, warps: int) -> None:
    from lynx.kernels.triton_moe_align import _moe_align_kernel
    from lynx.kernels.triton_moe_gemm import sum_topk_kernel

    align_sig = {"ids_ptr": "*i64", "weights_ptr": "*fp32", "sorted_ptr": "*i32", "block_expert_ptr": "*i32",
                 "num_slots_ptr": "*i32", "num_pairs": "i32", "max_blocks": "i32", "max_slots": "i32",
                 "NUM_EXPERTS": "constexpr", "E_POW2": "constexpr", "BLOCK_M": "constexpr", "CHUNK": "constexpr",
                 "FILL": "constexpr"}
    e_pow2 = max(16, 1 << (experts - 1).bit_length())
    compiled = compile_sm90(_moe_align_kernel, align_sig, dict(NUM_EXPERTS=experts, E_POW2=e_pow2, BLOCK_M=16,
                                                               CHUNK=chunk, FILL=1024), warps, 1)
    assert compiled.metadata.shared <= SM90_SMEM
    sum_sig = {"pair_out_ptr": "*fp32", "weights_ptr": "*fp32", "out_ptr": "*bf16", "H": "constexpr",
               "TOP_K": "constexpr", "BLOCK_H": "constexpr"}
    summed = compile_sm90(sum_topk_kernel, sum_sig, dict(H=2048, TOP_K=8, BLOCK_H=1024), 4, 1)
    assert "ld.global.v4" in summed.asm["ptx"]  # the k-sum streams fp32 rows as 16-byte loads
