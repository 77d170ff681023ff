"""The two Triton routing kernels: partial active sets, and route (remap + weights + store).

Launch plans (chosen on the host by :mod:`lynx.kernels.routing_plans`):

* fused, one launch: ``route_kernel`` with ``ACTIVE=LYNX_HERE`` / ``OEA_HERE`` and a single
  program holding every row of the batch in registers, so the batch-wide steps (column
  sums of votes, union of picks, first valid row) are reductions over the tile's row axis
  and need no global synchronisation. Best for small batches.
* split, two launches: ``active_kernel`` writes each row block's partial active set
  (``[num_blocks, BN]`` int8), then ``route_kernel`` with ``ACTIVE=FROM_PARTS`` ORs them and
  routes its own rows. The work per token runs on many SMs; a kernel boundary is the
  only global barrier a CUDA graph offers without cooperative launch.
* top-k: ``route_kernel`` with ``ACTIVE=NONE``, any number of programs.

Padding rows get weight 0 and the ids of the first valid row; a program whose block holds
padding but not that row routes it once more (one extra row, only in such programs).
Grids depend only on ``T``; nothing reads device values on the host.

``route_kernel``'s body is the helper ``route_rows``; the fused router GEMM + routing kernel
(:mod:`lynx.kernels.router_route_kernel`) runs it too, in its last program, with the
single-program modes (``NONE`` over all rows, ``LYNX_HERE``, ``OEA_HERE``).
"""

from __future__ import annotations

import triton
import triton.language as tl

from lynx.kernels.pdl_triton import pdl_enter
from lynx.kernels.routing_active import (
    batch_size,
    first_valid_row,
    lynx_batch_votes,
    lynx_picks,
    lynx_votes,
    oea_base,
)
from lynx.kernels.routing_remap import remap_slots, slot_weights
from lynx.kernels.routing_tiles import (
    affinity_bins,
    load_logits,
    load_row_valid,
    rank_keys,
    union_of_rows,
)

# route_kernel's ACTIVE modes: where the batch's active set comes from
NONE, FROM_PARTS, LYNX_HERE, OEA_HERE = 0, 1, 2, 3
# route_kernel's TALLY modes (lynx.routing.tally): none; mark both rows; mark the policy's
# experts and store the logits (plain top-k is ranked for all layers at the end of the step)
TALLY_NONE, TALLY_MARKS, TALLY_LOGITS = 0, 1, 2
LYNX, OEA = 1, 2  # active_kernel's POLICY


@triton.jit(do_not_specialize=["T", "alpha_bits"])
def active_kernel(
    logits_ptr, valid_ptr, parts_ptr,  # [T, N] logits, [T] bool (if HAS_VALID), [blocks, BN] int8 out
    T, stride_t, stride_n, alpha_bits,  # alpha_bits: LYNX alpha's float64 bits as int64
    N: tl.constexpr,  # experts (a model constant: static masks, vectorised loads when N == BN)
    HAS_VALID: tl.constexpr, POLICY: tl.constexpr,
    KEY16: tl.constexpr, WIDE: tl.constexpr, PACK64: tl.constexpr,
    K: tl.constexpr, KP: tl.constexpr, BETA: tl.constexpr, K0: tl.constexpr, K0P: tl.constexpr,
    BT: tl.constexpr, BN: tl.constexpr, CHUNK: tl.constexpr,
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    """Experts chosen by the valid rows of row block ``pid`` (LYNX picks / OEA base)."""
    pdl_enter(PDL)  # before any read of what earlier kernels write
    pid = tl.program_id(0)
    rows = pid * BT + tl.arange(0, BT)  # [BT]
    cols = tl.arange(0, BN)  # [BN]
    z, raw = load_logits(logits_ptr, rows, cols, T, N, stride_t, stride_n)  # [BT, BN]
    ok = load_row_valid(valid_ptr, rows, T, HAS_VALID)  # [BT]
    key = rank_keys(z, raw, cols, N, KEY16)  # [BT, BN]
    if POLICY == 1:  # LYNX
        alpha = alpha_bits.to(tl.float64, bitcast=True)
        batch = batch_size(valid_ptr, T, HAS_VALID, CHUNK)
        if WIDE:
            batch = batch.to(tl.int64)
        total = lynx_batch_votes(
            logits_ptr, valid_ptr, T, N, stride_t, stride_n, alpha, batch, cols, HAS_VALID, BETA, CHUNK
        )  # s' [BN], over the whole batch
        q = affinity_bins(z, alpha, BETA)
        votes = lynx_votes(q, ok, batch, BETA)
        chosen = lynx_picks(q, key, votes, total, batch, cols, N, K, KP, BETA, KEY16, WIDE, PACK64)
    else:  # OEA
        chosen = oea_base(key, cols, K0, K0P, KEY16)
    tl.store(parts_ptr + pid * BN + cols, union_of_rows(chosen, ok).to(tl.int8))


@triton.jit
def _union_of_parts(parts_ptr, num_parts, cols, BN: tl.constexpr, PART_CHUNK: tl.constexpr):
    """``[BN]`` int32: OR of the partial active sets written by ``active_kernel``."""
    active = tl.zeros([BN], tl.int32)
    for p0 in range(0, num_parts, PART_CHUNK):
        p = p0 + tl.arange(0, PART_CHUNK)  # [PART_CHUNK]
        part = tl.load(parts_ptr + p[:, None] * BN + cols[None, :], mask=p[:, None] < num_parts, other=0)
        active = tl.maximum(active, tl.max(part.to(tl.int32), axis=0))
    return active


@triton.jit
def route_rows(
    logits_ptr, valid_ptr, parts_ptr, weights_ptr, ids_ptr, hits_ptr, kept_ptr,  # as route_kernel
    pid,  # row block: rows pid * BT .. pid * BT + BT - 1 (0 in the single-program plans)
    T, stride_t, stride_n, num_parts, alpha_bits,
    N: tl.constexpr,
    HAS_VALID: tl.constexpr, ACTIVE: tl.constexpr, TALLY: tl.constexpr,
    KEY16: tl.constexpr, WIDE: tl.constexpr, PACK64: tl.constexpr,
    SOFTMAX: tl.constexpr, RENORM: tl.constexpr, RESORT: tl.constexpr,
    K: tl.constexpr, KP: tl.constexpr, BETA: tl.constexpr, K0: tl.constexpr, K0P: tl.constexpr,
    BT: tl.constexpr, BN: tl.constexpr, CHUNK: tl.constexpr,
):
    """Body of :func:`route_kernel` for row block ``pid``: loads the logits, stores
    ``(weights, ids)`` and the tally. Also called by the fused router kernel
    (:mod:`lynx.kernels.router_route_kernel`) once the whole ``[T, N]`` logits are written."""
    rows = pid * BT + tl.arange(0, BT)  # [BT]
    cols = tl.arange(0, BN)  # [BN]
    z, raw = load_logits(logits_ptr, rows, cols, T, N, stride_t, stride_n)  # [BT, BN]
    ok = load_row_valid(valid_ptr, rows, T, HAS_VALID)  # [BT]
    key = rank_keys(z, raw, cols, N, KEY16)  # [BT, BN]

    if ACTIVE == 1:  # FROM_PARTS
        active = _union_of_parts(parts_ptr, num_parts, cols, BN, CHUNK)
    elif ACTIVE == 2:  # LYNX_HERE: this program holds the whole batch
        alpha = alpha_bits.to(tl.float64, bitcast=True)
        batch = tl.sum(ok.to(tl.int32), axis=0)
        if WIDE:
            batch = batch.to(tl.int64)
        q = affinity_bins(z, alpha, BETA)
        votes = lynx_votes(q, ok, batch, BETA)  # [BT, BN]
        total = tl.sum(votes, axis=0)  # s' [BN]
        picks = lynx_picks(q, key, votes, total, batch, cols, N, K, KP, BETA, KEY16, WIDE, PACK64)
        active = union_of_rows(picks, ok)
    elif ACTIVE == 3:  # OEA_HERE
        active = union_of_rows(oea_base(key, cols, K0, K0P, KEY16), ok)
    else:  # NONE: plain top-k
        active = tl.zeros([BN], tl.int32)

    route_loaded(
        z, raw, ok, key, rows, cols, active, logits_ptr, valid_ptr, weights_ptr, ids_ptr, hits_ptr, kept_ptr,
        pid, T, stride_t, stride_n, N, HAS_VALID, ACTIVE == 0, TALLY, KEY16, SOFTMAX, RENORM, RESORT,
        K, KP, BT, BN, CHUNK,
    )


@triton.jit
def route_loaded(
    z, raw, ok, key, rows, cols,  # the block's [BT, BN] logits (float32, raw), [BT] valid, keys, indices
    active,  # [BN] int32 0/1: the batch's active set (all 0: plain top-k)
    logits_ptr, valid_ptr, weights_ptr, ids_ptr, hits_ptr, kept_ptr,
    pid, T, stride_t, stride_n,
    N: tl.constexpr, HAS_VALID: tl.constexpr, PLAIN_TOPK: tl.constexpr, TALLY: tl.constexpr,
    KEY16: tl.constexpr, SOFTMAX: tl.constexpr, RENORM: tl.constexpr, RESORT: tl.constexpr,
    K: tl.constexpr, KP: tl.constexpr, BT: tl.constexpr, BN: tl.constexpr, CHUNK: tl.constexpr,
):
    """The common end of every plan for row block ``pid`` once the active set is known:
    remap, weights, padding rows, stores and the tally (also the cooperative plan's last phase,
    :mod:`lynx.kernels.routing_coop`)."""
    lo, ids = remap_slots(key, active, cols, N, K, KP, KEY16, RESORT)  # [BT, KP] best first
    dtype = logits_ptr.dtype.element_ty
    weights = slot_weights(z, key, lo, cols, dtype, K, KP, KEY16, SOFTMAX, RENORM, PLAIN_TOPK)

    if HAS_VALID:
        # Padding rows: weight 0 and the ids of the first valid row (row 0 if none is valid).
        # Only blocks holding padding look for that row (an O(T) scan), and only those
        # without it route it once more (the split plan; the fused one holds every row).
        if tl.sum(((rows < T) & ~ok).to(tl.int32), axis=0) > 0:
            first = first_valid_row(valid_ptr, T, HAS_VALID, CHUNK)
            ref = tl.max(tl.where(rows[:, None] == first, ids, -1), axis=0)[None, :]  # [1, KP]
            if (first < pid * BT) | (first >= pid * BT + BT):
                one = first + tl.arange(0, 1)  # [1]
                z1, raw1 = load_logits(logits_ptr, one, cols, T, N, stride_t, stride_n)  # [1, BN]
                _, ref = remap_slots(rank_keys(z1, raw1, cols, N, KEY16), active, cols, N, K, KP, KEY16, RESORT)
            ids = tl.where(ok[:, None], ids, ref)
        weights = tl.where(ok[:, None], weights, 0.0)

    slot = tl.arange(0, KP)[None, :]
    out = rows[:, None] * K + slot  # [BT, KP] offsets into [T, K]
    store = (rows[:, None] < T) & (slot < K)
    tl.store(ids_ptr + out, ids.to(tl.int64), mask=store)
    tl.store(weights_ptr + out, weights, mask=store)

    if TALLY != 0:  # the engine's per-step expert counts, at the cost of a few stores (no launch)
        one = tl.full([BT, KP], 1, tl.int32)
        tl.store(hits_ptr + N + ids, one, mask=store & ok[:, None])  # same value from every writer
        if TALLY == 2:  # TALLY_LOGITS
            kept = rows[:, None].to(tl.int64) * N + cols[None, :]  # [BT, BN]
            tl.store(kept_ptr + kept, z, mask=(rows[:, None] < T) & (cols[None, :] < N))
        elif PLAIN_TOPK:
            tl.store(hits_ptr + ids, one, mask=store & ok[:, None])  # plain top-k: before == after
        else:  # an extra selection pass; the engine keeps the logits instead (TALLY_LOGITS)
            before = union_of_rows(oea_base(key, cols, K, KP, KEY16), ok)  # [BN] own top-K, valid rows
            tl.store(hits_ptr + cols, before, mask=(before > 0) & (cols < N))


@triton.jit(do_not_specialize=["T", "num_parts", "alpha_bits"])
def route_kernel(
    logits_ptr, valid_ptr, parts_ptr, weights_ptr, ids_ptr,  # out: [T, K] float32, [T, K] int64
    hits_ptr,  # [2, N] int32 (if TALLY): set to 1 for experts of plain top-k (row 0), of the policy (row 1)
    kept_ptr,  # [>= T, N] float32 (if TALLY == TALLY_LOGITS): the logits, for the tally's plain top-k
    T, stride_t, stride_n, num_parts, alpha_bits,
    N: tl.constexpr,
    HAS_VALID: tl.constexpr, ACTIVE: tl.constexpr, TALLY: tl.constexpr,
    KEY16: tl.constexpr, WIDE: tl.constexpr, PACK64: tl.constexpr,
    SOFTMAX: tl.constexpr, RENORM: tl.constexpr, RESORT: tl.constexpr,
    K: tl.constexpr, KP: tl.constexpr, BETA: tl.constexpr, K0: tl.constexpr, K0P: tl.constexpr,
    BT: tl.constexpr, BN: tl.constexpr, CHUNK: tl.constexpr,
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    """Final ``(weights, ids)`` of row block ``pid`` (the only block in the fused modes)."""
    pdl_enter(PDL)  # before any read of what earlier kernels write
    route_rows(
        logits_ptr, valid_ptr, parts_ptr, weights_ptr, ids_ptr, hits_ptr, kept_ptr, tl.program_id(0),
        T, stride_t, stride_n, num_parts, alpha_bits, N,
        HAS_VALID, ACTIVE, TALLY, KEY16, WIDE, PACK64, SOFTMAX, RENORM, RESORT, K, KP, BETA, K0, K0P, BT, BN, CHUNK,
    )
