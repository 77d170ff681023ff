"""Host side of the one-launch fused-MoE kernel: workspace, grid, residency, launch.

See :mod:`lynx.kernels.triton_moe_persistent` for the kernel and why every program must be
resident at once; :func:`lynx.kernels.triton_moe.fused_experts_triton` calls
:func:`persistent_launch` when ``TritonMoEConfig.persistent`` is set.
"""

from __future__ import annotations

import warnings

import torch
import triton

from lynx.kernels.cuda_driver import driver_resident_ctas
from lynx.kernels.moe_config import TritonMoEConfig
from lynx.kernels.pdl import pdl_launch
from lynx.kernels.skinny_gemm import COUNTER_SLOTS, PERSISTENT_SLOTS, split_k_counters
from lynx.kernels.triton_interpret import interpreter_enabled
from lynx.kernels.triton_moe import MoERouting, _dot_precision, _num_sms, _sum_block_t
from lynx.kernels.triton_moe_align import align_params
from lynx.kernels.triton_moe_persistent import moe_persistent_kernel, reset_block, workspace_slots

LAST_RESIDENCY: dict[str, int | None] = {}  # the last residency check (grid, hand, driver): GPU check script


def persistent_workspace(device: torch.device) -> torch.Tensor | None:
    """Zeroed int32 counters of the one-launch kernel (every call leaves them zero): the top
    ``PERSISTENT_SLOTS`` of the device's shared counter workspace
    (:func:`~lynx.kernels.skinny_gemm.split_k_counters`), whose other users count from slot 0
    (split-K and attention tiles, far below that range). None during graph capture while the
    workspace does not exist yet."""
    buf = split_k_counters(device)
    return None if buf is None else buf[COUNTER_SLOTS - PERSISTENT_SLOTS:]


def grid_suits_one_launch(n_tiles1: int, n_tiles2: int, wave: int) -> bool:
    """Whether both phases' N tiles fit in half a wave. Wider matrices leave programs looping
    over tiles in one M class: Mixtral-8x7B's 448 gate_up tiles (wave 396) ran 5% slower in one
    launch than in two at batch 16, while Qwen2-57B-A14B's 80 ran 13-18% faster (H200,
    docs/performance.md section 9)."""
    return max(n_tiles1, n_tiles2) <= wave // 2


def persistent_grid(max_blocks: int, n_tiles1: int, n_tiles2: int, wave: int) -> tuple[int, int, int]:
    """``(G, gm1, gm2)``: at most one wave of programs; each phase's virtual grid ``gm * n_tiles``
    fits in ``G``, or has ``gm = 1`` (N tiles wider than the wave: programs loop over tiles)."""
    gms = [max(1, min(max_blocks, wave // n)) for n in (n_tiles1, n_tiles2)]
    programs = min(wave, max(gm * n for gm, n in zip(gms, (n_tiles1, n_tiles2))))
    assert all(gm * n <= programs or gm == 1 for gm, n in zip(gms, (n_tiles1, n_tiles2)))
    return programs, gms[0], gms[1]


def resident_ctas(n_regs: int, shared: int, warps: int, smem_per_sm: int, threads_per_sm: int,
                  regs_per_sm: int = 65536) -> int:
    """CTAs of one kernel that fit on an SM at once (registers per warp in units of 256,
    1 KiB of shared memory reserved per CTA as on sm_80/sm_90, at most 32 CTAs)."""
    regs_per_warp = -(-max(n_regs, 1) * 32 // 256) * 256
    by_regs = (regs_per_sm // regs_per_warp) // warps
    by_smem = smem_per_sm // (shared + 1024)
    return min(32, threads_per_sm // (32 * warps), by_regs, by_smem)


_residency: dict[tuple, int] = {}  # (device, launch constants) -> CTAs per SM that fit (host-side cache)


def _all_resident(args: tuple, consts: dict, grid: int, device: torch.device) -> bool:
    """Whether ``grid`` programs of the compiled kernel fit on the GPU at once: the smaller of
    the hand count and the driver's (cached per device and constants). Warns when they do not."""
    key = (device, tuple(sorted((k, str(v)) for k, v in consts.items())))
    fit = _residency.get(key)
    if fit is None:
        kernel = moe_persistent_kernel.warmup(*args, grid=(grid,), PHASES=3, **consts)
        kernel._init_handles()  # loads the binary: n_regs
        warps = kernel.metadata.num_warps
        props = torch.cuda.get_device_properties(device)
        fit = resident_ctas(kernel.n_regs, kernel.metadata.shared, warps,
                            props.shared_memory_per_multiprocessor, props.max_threads_per_multi_processor)
        driver = driver_resident_ctas(kernel.function, 32 * warps, kernel.metadata.shared)
        LAST_RESIDENCY.clear()
        LAST_RESIDENCY.update(grid=grid, hand=fit * _num_sms(device),
                              driver=None if driver is None else driver * _num_sms(device))
        fit = _residency[key] = fit if driver is None else min(fit, driver)  # never trust the larger
        if fit * _num_sms(device) < grid:
            warnings.warn(
                f"one-launch MoE: {grid} programs but only {fit} CTAs per SM fit on {props.name} "
                f"({kernel.n_regs} registers, {kernel.metadata.shared} B shared memory); a program that is not "
                "resident could deadlock the kernel, so this shape runs as two launches "
                "(LYNX_MOE_PERSISTENT=0 selects them everywhere)", RuntimeWarning, stacklevel=4)
    return fit * _num_sms(device) >= grid


def persistent_launch(
    hidden: torch.Tensor, w13: torch.Tensor, w2: torch.Tensor, routing: MoERouting, cfg: TritonMoEConfig,
    workspace: torch.Tensor, *, programs: int | None = None, phases: tuple[int, ...] = (3,),
) -> torch.Tensor | None:
    """``[T, H]`` through the one-launch kernel (fused align only), or None when the shape does
    not suit it (:func:`grid_suits_one_launch`) or its programs cannot all be resident on this
    GPU (warned); the caller then runs the two launches.

    ``programs`` (tests) overrides ``G``; ``phases=(1, 2)`` (tests) runs the gate_up phase and
    the down phase as two launches, so that the interpreter can run ``G > 1`` without waits.
    """
    num_tokens, hidden_size = hidden.shape
    inter_size = w13.shape[1] // 2
    num_pairs, top_k, max_blocks = routing.num_pairs, routing.top_k, routing.max_blocks()
    n_tiles1, n_tiles2 = triton.cdiv(inter_size, cfg.block_n1), triton.cdiv(hidden_size, cfg.block_n2)
    if routing.aligned is not None:
        raise ValueError("the one-launch kernel derives its blocks itself (fused align only)")
    if cfg.token_rows and num_tokens > routing.block_m:
        raise ValueError(f"token-row blocks hold one row per token: {num_tokens} tokens > block_m={routing.block_m}")
    if workspace_slots(max_blocks, n_tiles2) > workspace.numel():
        raise ValueError(f"{workspace_slots(max_blocks, n_tiles2)} counters needed, workspace has {workspace.numel()}")
    # the interpreter runs programs one after another: no program may wait
    interpret = interpreter_enabled() or hidden.device.type != "cuda"
    wave = 1 if interpret else cfg.ctas_per_sm * _num_sms(hidden.device)
    if not interpret and programs is None and not grid_suits_one_launch(n_tiles1, n_tiles2, wave):
        return None  # the caller runs the two launches
    grid, gm1, gm2 = persistent_grid(max_blocks, n_tiles1, n_tiles2, programs or wave)
    if interpret and grid > 1 and 3 in phases:
        raise ValueError("the interpreter runs programs one after another: G > 1 needs phases=(1, 2)")
    prm = align_params(num_pairs, routing.num_experts, routing.block_m)
    local1, local2 = (triton.next_power_of_2(triton.cdiv(max_blocks, gm)) for gm in (gm1, gm2))
    table = torch.empty(grid * (local1 + local2) * (1 + routing.block_m), dtype=torch.int32, device=hidden.device)
    inter = torch.empty(num_pairs, inter_size, dtype=hidden.dtype, device=hidden.device)
    pair_out = torch.empty(num_pairs, hidden_size, dtype=torch.float32, device=hidden.device)
    out = torch.empty(num_tokens, hidden_size, dtype=hidden.dtype, device=hidden.device)
    args = (hidden, w13, w2, inter, pair_out, out, routing.ids, routing.weights, table, workspace,
            num_pairs, num_tokens, hidden.stride(0), w13.stride(0), w13.stride(1), w2.stride(0), w2.stride(1),
            inter.stride(0), pair_out.stride(0), gm1, gm2)
    consts = dict(H=hidden_size, I=inter_size, TOP_K=top_k, BLOCK_M=routing.block_m, BLOCK_N1=cfg.block_n1,
                  BLOCK_K1=cfg.block_k1, BLOCK_N2=cfg.block_n2, BLOCK_K2=cfg.block_k2,
                  DOT_PRECISION=_dot_precision(hidden.dtype), NUM_EXPERTS=routing.num_experts,
                  E_POW2=prm.e_pow2, P_POW2=prm.p_pow2, LOCAL1=local1, LOCAL2=local2,
                  BLOCK_T=_sum_block_t(num_tokens, cfg.block_n2), RESET=reset_block(max_blocks),
                  TOKEN_ROWS=cfg.token_rows, KP=triton.next_power_of_2(top_k),
                  num_warps=cfg.warps1, num_stages=cfg.stages1, **pdl_launch(hidden.device, "moe"))
    if not interpret and grid > _num_sms(hidden.device) and not _all_resident(args, consts, grid, hidden.device):
        return None  # more than one CTA per SM would have to fit, and they do not (warned once)
    for phase in phases:
        moe_persistent_kernel[(grid,)](*args, PHASES=phase, **consts)
    return out
