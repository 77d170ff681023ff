"""Host side of the Triton fused-MoE backend: buffers, grids and the launches.

``fused_experts_triton`` with the decode defaults is two launches: gate_up+SiLU (which
derives its row blocks from the routing itself) -> down*weight (same, plus the k-sum in
its last program per N tile). Other configurations add a metadata launch
(``align="kernel"``/``"legacy"``, or more than ``SMALL_MAX_PAIRS`` pairs) and/or the
separate sum kernel (``fuse_sum=False``); ``persistent=True`` (the default up to 16 tokens) runs both GEMMs
in one launch (:mod:`lynx.kernels.triton_moe_persistent`, host side in
:mod:`lynx.kernels.triton_moe_persistent_host`). No host syncs and every shape depends only on
``(T, k, E, H, I)`` and the config, so the call can be captured in a CUDA graph. The
stages are exposed separately so that ``lynx bench kernels`` can time them.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import torch
import triton

from lynx.kernels.moe_align import AlignedRouting
from lynx.kernels.moe_config import TritonMoEConfig, default_config, grid_m
from lynx.kernels.moe_reference import check_expert_args
from lynx.kernels.pdl import pdl_launch
from lynx.kernels.triton_moe_align import SMALL_MAX_PAIRS, align_params, moe_align_triton
from lynx.kernels.triton_moe_gemm import down_weighted_kernel, gate_up_silu_kernel, sum_topk_kernel

_TRITON_DTYPES = (torch.bfloat16, torch.float16, torch.float32)
_SUM_TILE_ELEMS = 2048  # BLOCK_T * BLOCK_N of the fused k-sum (16 fp32 registers per thread and slot)


@functools.lru_cache(maxsize=None)
def _num_sms(device: torch.device) -> int:
    """SM count (cached; a host-side property query, safe during graph capture)."""
    if device.type != "cuda":
        return 4  # interpreter on CPU: value only shapes the grid
    return torch.cuda.get_device_properties(device).multi_processor_count


def _dot_precision(dtype: torch.dtype) -> str:
    # fp32 models must not silently drop to TF32 (the CPU-matching tests use fp32)
    return "ieee" if dtype == torch.float32 else "tf32"


@dataclass(frozen=True)
class MoERouting:
    """What both GEMMs need to find their row blocks.

    ``aligned`` is None when the GEMMs derive the blocks themselves (fused align: each launch
    then gets a scratch table, one private region per program); the ids and float32
    weights are always there (the down kernel scales by the weights).
    """

    ids: torch.Tensor  # [P] expert ids
    weights: torch.Tensor  # [P] float32
    num_experts: int
    top_k: int
    block_m: int
    aligned: AlignedRouting | None

    @property
    def num_pairs(self) -> int:
        return self.ids.numel()

    def launch(self, gm: int, n_tiles: int) -> tuple[tuple, dict]:
        """Kernel arguments ``(ids, weights, table, sorted, block_expert, num_slots)`` and
        constexprs for a ``(gm, n_tiles)`` grid; the per-program block tables when fused."""
        prm = align_params(self.num_pairs, self.num_experts, self.block_m)
        local_blocks = triton.next_power_of_2(triton.cdiv(self.max_blocks(), gm))  # blocks per program
        consts = dict(FUSED_ALIGN=self.aligned is None, NUM_EXPERTS=self.num_experts, E_POW2=prm.e_pow2,
                      P_POW2=prm.p_pow2, LOCAL_BLOCKS=local_blocks)
        a = self.aligned
        if a is None:
            table = torch.empty(gm * n_tiles * local_blocks * (1 + self.block_m), dtype=torch.int32,
                                device=self.ids.device)
            return (self.ids, self.weights, table, table, table, table), consts
        return (self.ids, self.weights, a.num_slots, a.sorted_pair_ids, a.block_expert, a.num_slots), consts

    def max_blocks(self) -> int:
        if self.aligned is not None:
            return self.aligned.block_expert.numel()
        return align_params(self.num_pairs, self.num_experts, self.block_m).max_blocks


def make_routing(
    topk_ids: torch.Tensor, topk_weights: torch.Tensor, num_experts: int, cfg: TritonMoEConfig
) -> MoERouting:
    """Flatten the routing and run the metadata launch the config asks for (if any)."""
    top_k = topk_ids.shape[-1]
    weights = topk_weights.to(torch.float32).contiguous()  # [T, k]
    align = cfg.align
    if align == "fused" and topk_ids.numel() > SMALL_MAX_PAIRS:
        align = "kernel"  # one program holds at most SMALL_MAX_PAIRS pairs: prefill gets the chunked kernel
    aligned = None
    if align == "kernel":
        aligned = moe_align_triton(topk_ids, weights, num_experts, cfg.block_m)
    elif align == "legacy":
        from lynx.kernels.moe_align_legacy import moe_align_legacy

        aligned = moe_align_legacy(topk_ids, weights, num_experts, cfg.block_m)
    flat_ids = topk_ids.reshape(-1).contiguous()  # [P]
    return MoERouting(flat_ids, weights.reshape(-1), num_experts, top_k, cfg.block_m, aligned)


def sum_counters(hidden_size: int, cfg: TritonMoEConfig, device: torch.device) -> torch.Tensor:
    """Per-N-tile counters of the fused k-sum (contents set by the gate_up kernel)."""
    return torch.empty(triton.cdiv(hidden_size, cfg.block_n2), dtype=torch.int32, device=device)


def gate_up_silu(
    hidden: torch.Tensor, w13: torch.Tensor, routing: MoERouting, cfg: TritonMoEConfig,
    counters: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[P, I]`` ``silu(gate) * up`` per routed pair (rows of dropped pairs left unwritten).

    ``counters`` (if given) are zeroed on the way, for :func:`down_weighted`'s fused sum.
    """
    _, hidden_size = hidden.shape
    inter_size = w13.shape[1] // 2
    inter = torch.empty(routing.num_pairs, inter_size, dtype=hidden.dtype, device=hidden.device)
    n_tiles = triton.cdiv(inter_size, cfg.block_n1)
    gm = grid_m(routing.max_blocks(), n_tiles, _num_sms(hidden.device), cfg.ctas_per_sm)
    num_counters = 0 if counters is None else counters.numel()
    args, consts = routing.launch(gm, n_tiles)
    gate_up_silu_kernel[(gm, n_tiles)](
        hidden, w13, inter, *args,
        args[2] if counters is None else counters, num_counters, routing.num_pairs,
        hidden.stride(0), w13.stride(0), w13.stride(1), inter.stride(0),
        H=hidden_size, I=inter_size, TOP_K=routing.top_k,
        grid_m=gm, BLOCK_M=routing.block_m, BLOCK_N=cfg.block_n1, BLOCK_K=cfg.block_k1,
        DOT_PRECISION=_dot_precision(hidden.dtype), **consts,
        NUM_COUNTERS=triton.next_power_of_2(num_counters) if num_counters else 0,
        num_warps=cfg.warps1, num_stages=cfg.stages1, **pdl_launch(hidden.device, "moe"),
    )
    return inter


def down_weighted(
    inter: torch.Tensor, w2: torch.Tensor, routing: MoERouting, cfg: TritonMoEConfig,
    counters: torch.Tensor | None = None, out_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(pair_out [P, H] fp32 = w_p * down_e(inter[p]), out [T, H] or None)``.

    With ``counters`` (zeroed, one per N tile) the k-sum is fused and ``out`` (in
    ``out_dtype``) is returned too; the counters are left zeroed again.
    """
    _, hidden_size, inter_size = w2.shape
    num_pairs, top_k = routing.num_pairs, routing.top_k
    num_tokens = num_pairs // top_k
    pair_out = torch.empty(num_pairs, hidden_size, dtype=torch.float32, device=inter.device)
    fuse = counters is not None
    out = torch.empty(num_tokens, hidden_size, dtype=out_dtype or inter.dtype, device=inter.device) if fuse else None
    n_tiles = triton.cdiv(hidden_size, cfg.block_n2)
    gm = grid_m(routing.max_blocks(), n_tiles, _num_sms(inter.device), cfg.down_ctas_per_sm)
    (ids, weights, table, sorted_ids, block_expert, num_slots), consts = routing.launch(gm, n_tiles)
    block_t = _sum_block_t(num_tokens, cfg.block_n2)
    down_weighted_kernel[(gm, n_tiles)](
        inter, w2, weights, pair_out, ids, table, sorted_ids, block_expert, num_slots,
        out if fuse else pair_out, counters if fuse else num_slots,
        num_pairs, num_tokens,
        inter.stride(0), w2.stride(0), w2.stride(1), pair_out.stride(0),
        H=hidden_size, I=inter_size, TOP_K=top_k,
        grid_m=gm, BLOCK_M=routing.block_m, BLOCK_N=cfg.block_n2, BLOCK_K=cfg.block_k2,
        DOT_PRECISION=_dot_precision(inter.dtype), **consts,
        FUSE_SUM=fuse, BLOCK_T=block_t,
        num_warps=cfg.warps2, num_stages=cfg.stages2, **pdl_launch(inter.device, "moe"),
    )
    return pair_out, out


def sum_topk(
    pair_out: torch.Tensor, weights: torch.Tensor, num_tokens: int, top_k: int, dtype: torch.dtype,
    cfg: TritonMoEConfig,
) -> torch.Tensor:
    """``[T, H]`` in ``dtype``: deterministic sum of each token's k pair outputs."""
    hidden_size = pair_out.shape[1]
    out = torch.empty(num_tokens, hidden_size, dtype=dtype, device=pair_out.device)
    block_h = min(cfg.block_h_sum, triton.next_power_of_2(hidden_size))
    sum_topk_kernel[(num_tokens, triton.cdiv(hidden_size, block_h))](
        pair_out, weights, out, H=hidden_size, TOP_K=top_k, BLOCK_H=block_h, num_warps=4, **pdl_launch(out.device, "moe"),
    )
    return out


def _sum_block_t(num_tokens: int, block_n2: int) -> int:
    return max(1, min(triton.next_power_of_2(max(num_tokens, 1)), _SUM_TILE_ELEMS // block_n2))


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
    routing = make_routing(topk_ids, topk_weights, num_experts, cfg)
    if cfg.persistent and routing.aligned is None:  # one launch (batches above
        from lynx.kernels.triton_moe_persistent_host import persistent_launch, persistent_workspace

        workspace = persistent_workspace(hidden.device)  # SMALL_MAX_PAIRS pairs: two launches)
        if workspace is not None:
            out = persistent_launch(hidden, w13, w2, routing, cfg, workspace)
            if out is not None:  # None: a shape it does not suit, or programs that cannot all be resident
                return out
        else:
            warnings.warn("one-launch MoE: workspace missing during graph capture; using two launches "
                          "(call fused_experts_triton once before capturing)", RuntimeWarning, stacklevel=2)
    counters = sum_counters(hidden_size, cfg, hidden.device) if cfg.fuse_sum else None
    inter = gate_up_silu(hidden, w13, routing, cfg, counters)  # [P, I]
    pair_out, out = down_weighted(inter, w2, routing, cfg, counters, hidden.dtype)  # [P, H] fp32
    if out is not None:
        return out  # [T, H]
    return sum_topk(pair_out, routing.weights, num_tokens, top_k, hidden.dtype, cfg)  # [T, H]
