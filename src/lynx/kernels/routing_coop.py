"""Cooperative routing plan: LYNX or OEA for a whole batch in one launch of many programs.

The split plan (:mod:`lynx.kernels.routing_kernels`) needs two launches because LYNX's batch
score ``s'`` and the active set are batch-wide, and it recomputes ``s'`` from every row of
the batch in every program (O(T² N) work). Here each program owns ``BT`` rows and the
batch-wide quantities are built in global memory by atomics, with grid barriers between the
phases (every program is resident: the host launches at most one program per SM):

1. LYNX only: bins and votes of the program's rows; ``sums[e] += column sums - rows`` (int64
   atomics; every valid row votes at least 1 for every expert, so ``s' = sums + B`` and only
   the few entries above the lowest bin need an atomic). With ``LOCAL_SUMS`` each program
   instead recomputes ``s'`` from all rows (as the split plan does), which saves this phase's
   barrier at the price of O(T N) work per program: a choice for small batches, off by default
   until measured (``RoutingKernelConfig.coop_local_sums_max_rows``).
2. barrier; LYNX picks (from ``s' = sums + B``) or OEA's base set of the program's rows;
   ``active[e] = 1`` for the experts they chose (int32 atomics, only where chosen).
3. barrier; remap, weights, stores and tally of the program's rows
   (:func:`~lynx.kernels.routing_kernels.route_loaded`, shared with every other plan).

Workspace protocol (int32 slots that each call leaves zero, carved from the device's shared
counter buffer: :func:`coop_workspace`)::

    sums[BN] (int64, as 2 * BN int32 slots) | active[BN] | arrivals | exits

* a barrier: CTA barrier (every thread's atomics issued), ``arrivals += 1`` with release at
  GPU scope, then spin until an acquire read of ``arrivals`` reaches ``target`` (the number of
  programs times the barrier's ordinal: one counter serves both barriers);
* data written by other programs is read with ``.cg`` (from L2, where the atomics landed);
* at the end every program bumps ``exits`` (acq_rel); the last one zeroes ``sums``,
  ``active``, ``arrivals`` and ``exits`` (every other program is past its last access).

Deadlock freedom needs every program resident at once (a program spinning at a barrier
waits for all others): the host launches at most one program per SM, far below what fits
(a one-warp program leaves room for ~32 per SM), and other work on the GPU only delays
residency. As for the one-launch MoE, a partitioned GPU (MPS SM limits, green contexts)
with fewer SMs than the device reports could still deadlock; turn the plan off there with
``LYNX_ROUTING_KERNEL_CONFIG=coop_min_rows=0``.

Triton's interpreter runs programs one after another (a spinning program would wait for
ever), so there the host launches the phases separately (``PHASE`` 1, 2, 3) with the same
bodies and no barriers; ``PHASE=0`` is the real one-launch kernel.
"""

from __future__ import annotations

import warnings

import torch
import triton
import triton.language as tl

from lynx.kernels.pdl import pdl_launch
from lynx.kernels.pdl_triton import pdl_enter
from lynx.kernels.routing_active import batch_size, lynx_batch_votes, lynx_picks, lynx_votes, oea_base
from lynx.kernels.routing_kernels import route_loaded
from lynx.kernels.routing_tiles import (
    MAX_EXPERTS,
    affinity_bins,
    load_logits,
    load_row_valid,
    next_pow2,
    rank_keys,
    union_of_rows,
)
from lynx.kernels.skinny_gemm import COOP_SLOTS, LOW_SLOTS, split_k_counters
from lynx.kernels.triton_interpret import interpreter_enabled
from lynx.kernels.triton_moe import _num_sms


def workspace_slots(bn: int) -> int:
    """int32 slots one call of ``BN`` (power-of-two) expert columns uses (module docstring)."""
    return 3 * bn + 2


assert workspace_slots(MAX_EXPERTS) <= COOP_SLOTS and LOW_SLOTS % 2 == 0  # room for N <= 256; int64-aligned


def coop_workspace(device: torch.device) -> torch.Tensor | None:
    """The plan's zeroed int32 workspace: ``COOP_SLOTS`` slots just below the one-launch MoE's
    at the top of the device's shared counter buffer (:func:`~lynx.kernels.skinny_gemm.split_k_counters`;
    None during graph capture while that buffer does not exist yet). Its start is even, so
    the int64 ``sums`` view is aligned. Calls must not run concurrently on two streams."""
    buf = split_k_counters(device)
    return None if buf is None else buf[LOW_SLOTS:LOW_SLOTS + COOP_SLOTS]


def max_coop_programs(device: torch.device) -> int | None:
    """Programs the plan may launch on ``device``: one per SM (None: no limit, the interpreter)."""
    return None if device.type != "cuda" else _num_sms(device)


def coop_grid(num_rows: int, bn: int, block_rows: int, max_elems: int, max_programs: int | None,
              ) -> tuple[int, int] | None:
    """``(BT, programs)`` of the cooperative plan, or None where it cannot run. Every program
    must be resident at once: at most ``max_programs`` (:func:`max_coop_programs`: one per SM,
    so any kernel that fits an SM at all qualifies), so ``BT`` grows from ``block_rows``
    until they suffice; a block's ``[BT, BN]`` tile must stay within ``max_elems``."""
    bt = next_pow2(block_rows)
    while max_programs is not None and triton.cdiv(num_rows, bt) > max_programs:
        bt *= 2
    if bt * bn > max_elems:
        return None
    return bt, triton.cdiv(num_rows, bt)


_warned_capture: list[bool] = []  # warn once per process


def coop_route(
    logits: torch.Tensor, valid_arg: torch.Tensor, weights: torch.Tensor, ids: torch.Tensor,
    hits: torch.Tensor, kept: torch.Tensor, alpha_bits: int, policy_code: int, common: dict, route: dict,
    grid: tuple[int, int], warps: int, chunk: int, local_sums: bool = False,
) -> bool:
    """Launch the plan (one launch; in Triton's interpreter one per phase) on a ``[T, N]``
    call whose buffers and constexprs :func:`lynx.kernels.routing_triton.select_experts_triton`
    prepared; ``local_sums``: LYNX's ``LOCAL_SUMS`` (module docstring). False (nothing
    launched) while the workspace does not exist (graph capture)."""
    ws = coop_workspace(logits.device)
    if ws is None:
        if not _warned_capture:
            _warned_capture.append(True)
            warnings.warn("cooperative routing: the counter workspace does not exist during this CUDA-graph "
                          "capture, so the graph keeps the slower two-launch or single-program routing (run "
                          "one call eagerly before capturing)", RuntimeWarning, stacklevel=3)
        return False
    bn = common["BN"]
    sums = ws[: 2 * bn].view(torch.int64)  # [BN]
    interpret = interpreter_enabled() or logits.device.type != "cuda"
    local_sums = local_sums and policy_code == 1
    phases = (0,) if not interpret else (1, 2, 3) if policy_code == 1 and not local_sums else (2, 3)
    bt, programs = grid
    # ~64 entries per thread of one warp; 1 (one compile) where LOCAL_SUMS is off
    sums_chunk = max(1, min(next_pow2(logits.shape[0]), 2048 // bn)) if local_sums else 1
    for phase in phases:
        coop_route_kernel[(programs,)](
            logits, valid_arg, weights, ids, hits, kept, sums, ws, logits.shape[0], logits.stride(0),
            logits.stride(1), alpha_bits, POLICY=policy_code, BT=bt, CHUNK=chunk, PHASE=phase,
            LOCAL_SUMS=local_sums, SUMS_CHUNK=sums_chunk, **route, **common,
            num_warps=warps, **pdl_launch(logits.device, "routing"),
        )
    return True


@triton.jit
def _grid_barrier(arrivals_ptr, target):
    """Wait until ``target`` arrivals (this program's included) have been counted."""
    tl.debug_barrier()  # every thread's atomics precede the release
    tl.atomic_add(arrivals_ptr, 1, sem="release", scope="gpu")
    while tl.atomic_add(arrivals_ptr, 0, sem="acquire", scope="gpu") < target:
        pass


@triton.jit(do_not_specialize=["T", "alpha_bits"])
def coop_route_kernel(
    logits_ptr, valid_ptr, weights_ptr, ids_ptr, hits_ptr, kept_ptr,  # as route_kernel
    sums_ptr,  # [BN] int64 view of the workspace's first 2 * BN slots
    ws_ptr,  # int32 workspace, zero between calls (module docstring)
    T, stride_t, stride_n, alpha_bits,
    N: tl.constexpr,
    HAS_VALID: tl.constexpr, POLICY: tl.constexpr, TALLY: tl.constexpr,
    KEY16: tl.constexpr, WIDE: tl.constexpr, PACK64: tl.constexpr,
    SOFTMAX: tl.constexpr, RENORM: tl.constexpr, RESORT: tl.constexpr,
    K: tl.constexpr, KP: tl.constexpr, BETA: tl.constexpr, K0: tl.constexpr, K0P: tl.constexpr,
    BT: tl.constexpr, BN: tl.constexpr, CHUNK: tl.constexpr,
    PHASE: tl.constexpr,  # 0: all phases with grid barriers; 1 / 2 / 3: that phase alone (interpreter)
    LOCAL_SUMS: tl.constexpr = False,  # LYNX: s' from all rows in every program (no atomics, one barrier fewer)
    SUMS_CHUNK: tl.constexpr = 1,  # LOCAL_SUMS: rows per step of that sweep
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    """``(weights, ids)`` of row block ``pid`` under LYNX or OEA (``POLICY``: ``routing_kernels.LYNX`` / ``OEA``)."""
    pdl_enter(PDL)  # before any read of what earlier kernels write
    pid = tl.program_id(0)
    programs = tl.num_programs(0)
    rows = pid * BT + tl.arange(0, BT)  # [BT]
    cols = tl.arange(0, BN)  # [BN]
    active_ptr = ws_ptr + 2 * BN  # [BN]
    arrivals_ptr = ws_ptr + 3 * BN
    exits_ptr = arrivals_ptr + 1
    z, raw = load_logits(logits_ptr, rows, cols, T, N, stride_t, stride_n)  # [BT, BN]
    ok = load_row_valid(valid_ptr, rows, T, HAS_VALID)  # [BT]
    key = rank_keys(z, raw, cols, N, KEY16)  # [BT, BN]
    real = cols < N

    if PHASE != 3:
        if POLICY == 1:  # LYNX (routing_kernels.LYNX): votes, then picks against the batch's column sums
            alpha = alpha_bits.to(tl.float64, bitcast=True)
            batch = batch_size(valid_ptr, T, HAS_VALID, CHUNK)
            if WIDE:
                batch = batch.to(tl.int64)
            q = affinity_bins(z, alpha, BETA)
            votes = lynx_votes(q, ok, batch, BETA)  # h' [BT, BN], 0 on padding rows
            if (PHASE != 2) & (not LOCAL_SUMS):
                # this block's share of s' - B: a valid row's vote is at least 1 (the lowest bin),
                # so only entries above the lowest bin need an atomic (~10 of 128 per row, not all)
                above = votes - ok[:, None].to(votes.dtype)  # [BT, BN]
                part = tl.sum(above, axis=0).to(tl.int64)  # [BN]
                tl.atomic_add(sums_ptr + cols, part, mask=real & (part != 0), sem="relaxed", scope="gpu")
            if (PHASE == 0) & (not LOCAL_SUMS):
                _grid_barrier(arrivals_ptr, programs)
            if PHASE != 1:
                if LOCAL_SUMS:
                    total = lynx_batch_votes(logits_ptr, valid_ptr, T, N, stride_t, stride_n, alpha, batch, cols,
                                             HAS_VALID, BETA, SUMS_CHUNK)  # s' [BN], every row of the batch
                else:
                    total = tl.load(sums_ptr + cols, cache_modifier=".cg").to(batch.dtype) + batch  # s' [BN]
                picks = lynx_picks(q, key, votes, total, batch, cols, N, K, KP, BETA, KEY16, WIDE, PACK64)
                chosen = union_of_rows(picks, ok)  # [BN]
                tl.atomic_max(active_ptr + cols, chosen, mask=real & (chosen != 0), sem="relaxed", scope="gpu")
        elif PHASE != 1:  # OEA: the base set (phase 1 has nothing to do)
            chosen = union_of_rows(oea_base(key, cols, K0, K0P, KEY16), ok)  # [BN]
            tl.atomic_max(active_ptr + cols, chosen, mask=real & (chosen != 0), sem="relaxed", scope="gpu")

    if PHASE == 0:
        _grid_barrier(arrivals_ptr, programs * (2 if (POLICY == 1) & (not LOCAL_SUMS) else 1))
    if (PHASE == 0) | (PHASE == 3):
        active = tl.load(active_ptr + cols, cache_modifier=".cg")  # [BN] the batch's set
        route_loaded(
            z, raw, ok, key, rows, cols, active, logits_ptr, valid_ptr, weights_ptr, ids_ptr, hits_ptr, kept_ptr,
            pid, T, stride_t, stride_n, N, HAS_VALID, False, TALLY, KEY16, SOFTMAX, RENORM, RESORT,
            K, KP, BT, BN, CHUNK,
        )
        # exit: the last program leaves the workspace zero for the next call
        tl.debug_barrier()
        if tl.atomic_add(exits_ptr, 1, sem="acq_rel", scope="gpu") == programs - 1:
            tl.store(sums_ptr + cols, tl.zeros([BN], tl.int64))
            tl.store(active_ptr + cols, tl.zeros([BN], tl.int32))
            tl.store(arrivals_ptr, 0)
            tl.store(exits_ptr, 0)

