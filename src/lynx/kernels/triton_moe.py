"""Host side of the Triton fused-MoE backend: buffers, grids and the four launches.

``fused_experts_triton`` = align (1 CTA) -> gate_up+SiLU -> down*weight -> sum over k.
No host syncs and every shape depends only on ``(T, k, E, H, I)`` and the config, so the
call can be captured in a CUDA graph. The stages are exposed separately so that
``scripts/gpu_kernels_check.py`` can time them one by one.
"""

from __future__ import annotations

import functools

import torch
import triton

from lynx.kernels.moe_align import AlignedRouting
from lynx.kernels.moe_config import TritonMoEConfig, default_config, grid_m
from lynx.kernels.moe_reference import check_expert_args
from lynx.kernels.triton_moe_align import moe_align_triton
from lynx.kernels.triton_moe_gemm import down_weighted_kernel, gate_up_silu_kernel, sum_topk_kernel

_TRITON_DTYPES = (torch.bfloat16, torch.float16, torch.float32)


@functools.lru_cache(maxsize=None)
def _num_sms(device: torch.device) -> int:
    """SM count (cached; a host-side property query, safe during graph capture)."""
    if device.type != "cuda":
        return 4  # interpreter on CPU: value only shapes the grid
    return torch.cuda.get_device_properties(device).multi_processor_count


def _dot_precision(dtype: torch.dtype) -> str:
    # fp32 models must not silently drop to TF32 (the CPU-matching tests use fp32)
    return "ieee" if dtype == torch.float32 else "tf32"


def _max_blocks(routing: AlignedRouting) -> int:
    return routing.block_expert.numel()


def gate_up_silu(
    hidden: torch.Tensor, w13: torch.Tensor, routing: AlignedRouting, top_k: int, cfg: TritonMoEConfig
) -> torch.Tensor:
    """``[P, I]`` ``silu(gate) * up`` per routed pair (rows of dropped pairs left unwritten)."""
    _, hidden_size = hidden.shape
    inter_size = w13.shape[1] // 2
    inter = torch.empty(routing.num_pairs, inter_size, dtype=hidden.dtype, device=hidden.device)
    n_tiles = triton.cdiv(inter_size, cfg.block_n1)
    gm = grid_m(_max_blocks(routing), n_tiles, _num_sms(hidden.device), cfg.ctas_per_sm)
    gate_up_silu_kernel[(gm, n_tiles)](
        hidden, w13, inter,
        routing.sorted_pair_ids, routing.block_expert, routing.num_slots, routing.num_pairs,
        hidden.stride(0), w13.stride(0), w13.stride(1), inter.stride(0),
        H=hidden_size, I=inter_size, TOP_K=top_k,
        grid_m=gm, BLOCK_M=routing.block_m, BLOCK_N=cfg.block_n1, BLOCK_K=cfg.block_k1,
        DOT_PRECISION=_dot_precision(hidden.dtype), num_warps=cfg.warps1, num_stages=cfg.stages1,
    )
    return inter


def down_weighted(
    inter: torch.Tensor, w2: torch.Tensor, weights: torch.Tensor, routing: AlignedRouting, cfg: TritonMoEConfig
) -> torch.Tensor:
    """``[P, H]`` float32 ``w_p * down_e(inter[p])`` (rows of dropped pairs left unwritten)."""
    _, hidden_size, inter_size = w2.shape
    pair_out = torch.empty(routing.num_pairs, hidden_size, dtype=torch.float32, device=inter.device)
    n_tiles = triton.cdiv(hidden_size, cfg.block_n2)
    gm = grid_m(_max_blocks(routing), n_tiles, _num_sms(inter.device), cfg.ctas_per_sm)
    down_weighted_kernel[(gm, n_tiles)](
        inter, w2, weights, pair_out,
        routing.sorted_pair_ids, routing.block_expert, routing.num_slots, routing.num_pairs,
        inter.stride(0), w2.stride(0), w2.stride(1), pair_out.stride(0),
        H=hidden_size, I=inter_size,
        grid_m=gm, BLOCK_M=routing.block_m, BLOCK_N=cfg.block_n2, BLOCK_K=cfg.block_k2,
        DOT_PRECISION=_dot_precision(inter.dtype), num_warps=cfg.warps2, num_stages=cfg.stages2,
    )
    return pair_out


def sum_topk(
    pair_out: torch.Tensor, weights: torch.Tensor, num_tokens: int, top_k: int, dtype: torch.dtype,
    cfg: TritonMoEConfig,
) -> torch.Tensor:
    """``[T, H]`` in ``dtype``: deterministic sum of each token's k pair outputs."""
    hidden_size = pair_out.shape[1]
    out = torch.empty(num_tokens, hidden_size, dtype=dtype, device=pair_out.device)
    block_h = min(cfg.block_h_sum, triton.next_power_of_2(hidden_size))
    sum_topk_kernel[(num_tokens, triton.cdiv(hidden_size, block_h))](
        pair_out, weights, out, H=hidden_size, TOP_K=top_k, BLOCK_H=block_h, num_warps=4,
    )
    return out


def fused_experts_triton(
    hidden: torch.Tensor,
    w13: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    config: TritonMoEConfig | None = None,
) -> torch.Tensor:
    """Triton backend of :func:`lynx.kernels.fused_experts` (same contract)."""
    num_tokens, hidden_size, inter_size, num_experts, top_k = check_expert_args(
        hidden, w13, w2, topk_weights, topk_ids
    )
    if hidden.dtype not in _TRITON_DTYPES or w13.dtype != hidden.dtype or w2.dtype != hidden.dtype:
        raise TypeError(f"triton MoE needs matching bf16/fp16/fp32 tensors, got {hidden.dtype}/{w13.dtype}/{w2.dtype}")
    if w13.stride(-1) != 1 or w2.stride(-1) != 1:
        raise ValueError("expert weights need a unit stride along their last dimension")
    if num_tokens == 0 or top_k == 0:
        return torch.zeros_like(hidden)
    cfg = config or default_config(num_tokens, hidden_size, inter_size)
    hidden = hidden.contiguous()  # no-op for the usual [T, H] activations
    weights = topk_weights.reshape(-1).to(torch.float32).contiguous()  # [P]
    routing = moe_align_triton(topk_ids, weights, num_experts, cfg.block_m)
    inter = gate_up_silu(hidden, w13, routing, top_k, cfg)  # [P, I]
    pair_out = down_weighted(inter, w2, weights, routing, cfg)  # [P, H] fp32
    return sum_topk(pair_out, weights, num_tokens, top_k, hidden.dtype, cfg)  # [T, H]
