"""Triton computation of :class:`~lynx.kernels.moe_align.AlignedRouting` (block metadata).

Everything derives from two facts per (token, slot) pair ``p``: its expert and whether it
is kept (weight != 0, id in range). Metadata order is "by expert, then by ``p``", each
expert's segment padded to a multiple of ``BLOCK_M``.

Small batches (``P <= SMALL_MAX_PAIRS``, i.e. decode) -- one program sees every pair
(:func:`sorted_slots`): a ``tl.histogram`` gives the per-expert counts, one scan over the
experts gives each segment's padding, and one ``tl.sort`` of ``expert * P_POW2 + p`` puts
the pairs in metadata order, so the ``i``-th sorted pair lands in slot ``i + shift[expert]``.
That is a few dozen CTA barriers and ~1-2k instructions, no serial loop. Two users:

* **fused** (the decode default): every program of the two expert GEMMs
  (:mod:`lynx.kernels.triton_moe_gemm`) runs it and scatters the blocks *it* will process
  into a scratch table private to the program (:func:`program_blocks`) -- no metadata
  launch, and each block then costs one L1/L2 load, as precomputed metadata did;
* **small kernel** (:func:`moe_align_triton`, ``align="kernel"``): one single-program
  launch scattering all slots into an :class:`AlignedRouting`; also how the tests check the
  helper against :func:`~lynx.kernels.moe_align.moe_align_reference`.

Large batches (``P > SMALL_MAX_PAIRS``, prefill) -- **chunked**: three launches, O(P) work
in total: per-chunk histograms (+ sentinel fill), one program scanning them over chunks and
experts, and a per-chunk scatter where a pair's slot is its chunk's base for its expert
plus its rank inside the chunk (a ``[C, C]`` comparison).

All paths are deterministic, host-sync free, static in shape (CUDA-graph safe), and
produce exactly :func:`~lynx.kernels.moe_align.moe_align_reference`'s output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from lynx.kernels.moe_align import AlignedRouting, max_num_blocks
from lynx.kernels.pdl import pdl_launch
from lynx.kernels.pdl_triton import pdl_enter

SMALL_MAX_PAIRS = 1024  # one program sorts all pairs (fused / small kernel) up to this many
_CHUNK = 64  # pairs per program of the chunked (prefill) path: [64, 64] rank comparison
_FILL = 1024  # slots per store of the chunked path's sentinel fill


@dataclass(frozen=True)
class AlignParams:
    """Compile-time sizes of the helpers for one ``(P, E, BLOCK_M)``."""

    e_pow2: int  # histogram bins (>= E, power of two)
    p_pow2: int  # pairs held by one program (>= P, power of two; small path only)
    max_blocks: int


def align_params(num_pairs: int, num_experts: int, block_m: int) -> AlignParams:
    """``p_pow2`` is at least 128, so that decode batch sizes up to 16 x top-8 share compiles."""
    return AlignParams(
        e_pow2=max(32, triton.next_power_of_2(num_experts)),
        p_pow2=max(128, triton.next_power_of_2(max(num_pairs, 1))),
        max_blocks=max_num_blocks(num_pairs, num_experts, block_m),
    )


# ----------------------------------------------------------------------------- shared helpers
@triton.jit
def pair_keys(ids_ptr, weights_ptr, p, ok, NUM_EXPERTS: tl.constexpr):
    """``(expert int32, kept)`` of pairs ``p`` (where ``ok``); others get expert 0, kept False."""
    ids = tl.load(ids_ptr + p, mask=ok, other=0).to(tl.int32)
    w = tl.load(weights_ptr + p, mask=ok, other=0.0)
    kept = ok & (w != 0) & (ids >= 0) & (ids < NUM_EXPERTS)
    return tl.where(kept, ids, 0), kept


@triton.jit
def sorted_slots(
    ids_ptr, weights_ptr, num_pairs,
    NUM_EXPERTS: tl.constexpr, E_POW2: tl.constexpr, BLOCK_M: tl.constexpr, P_POW2: tl.constexpr,
):
    """Every pair's slot, in one program (``P <= P_POW2``).

    Returns ``(pair, expert, kept, slot, num_blocks)``; the first four are ``[P_POW2]`` in slot
    order. Pairs sorted by ``(expert, p)`` (one ``tl.sort`` of ``expert * P_POW2 + p``, dropped
    pairs last) are already in metadata order: the ``i``-th of them goes to slot
    ``i + shift[expert]``, with ``shift[e] = blk_start[e] * BLOCK_M - (pairs of experts < e)``
    -- the padding in front of its segment. Per-expert counts come from a histogram and both
    exclusive scans over the experts share one ``cumsum`` (block counts in the high 16 bits).
    """
    p = tl.arange(0, P_POW2)
    key, kept = pair_keys(ids_ptr, weights_ptr, p, p < num_pairs, NUM_EXPERTS)
    counts = tl.histogram(key, E_POW2, mask=kept)  # [EP]
    nblk = (counts + BLOCK_M - 1) // BLOCK_M  # [EP]
    packed = nblk * 65536 + counts  # both sums <= P <= 1024
    before = tl.cumsum(packed, axis=0) - packed  # [EP] exclusive
    shift = (before // 65536) * BLOCK_M - (before % 65536)  # [EP]
    order = tl.sort(tl.where(kept, key, E_POW2) * P_POW2 + p)  # [PP] unique values
    expert = order // P_POW2
    slot = p + tl.gather(shift, tl.minimum(expert, E_POW2 - 1), axis=0)  # [PP]
    return order % P_POW2, expert, expert < E_POW2, slot, tl.sum(nblk, axis=0)


@triton.jit
def program_blocks(
    ids_ptr, weights_ptr, table_ptr, num_pairs, pid_m, grid_m,
    NUM_EXPERTS: tl.constexpr, E_POW2: tl.constexpr, BLOCK_M: tl.constexpr, P_POW2: tl.constexpr,
    LOCAL_BLOCKS: tl.constexpr,
):
    """Fused metadata of one GEMM program, whose blocks are ``pid_m, pid_m + grid_m, ...``.

    Writes its ``i``-th block's expert to ``table[i]`` and pairs to
    ``table[LOCAL_BLOCKS + i*BLOCK_M : +BLOCK_M]`` (a region private to the program, so no
    other CTA ever writes it) and returns the total block count. One pass over the pairs
    per program; afterwards a block costs one (L1/L2-resident) load, like precomputed metadata.
    """
    rows_ptr = table_ptr + LOCAL_BLOCKS
    s = tl.arange(0, LOCAL_BLOCKS * BLOCK_M)
    tl.store(rows_ptr + s, tl.zeros([LOCAL_BLOCKS * BLOCK_M], tl.int32) + num_pairs)  # padding rows
    pair, expert, kept, slot, num_blocks = sorted_slots(
        ids_ptr, weights_ptr, num_pairs, NUM_EXPERTS, E_POW2, BLOCK_M, P_POW2)
    tl.debug_barrier()  # the scatter below overwrites some of those sentinels (other threads)
    block = slot // BLOCK_M
    mine = kept & (block % grid_m == pid_m)
    local = block // grid_m
    tl.store(rows_ptr + local * BLOCK_M + slot % BLOCK_M, pair, mask=mine)
    tl.store(table_ptr + local, expert, mask=mine & (slot % BLOCK_M == 0))
    tl.debug_barrier()  # the GEMM loop reads the table back (other threads' stores)
    return num_blocks


# ----------------------------------------------------------------------------- small kernel
@triton.jit(do_not_specialize=["num_pairs", "max_blocks"])
def _align_small_kernel(
    ids_ptr,  # [P] expert ids (any int dtype), pair p = t*k + j
    weights_ptr,  # [P] routing weights
    sorted_ptr,  # [max_blocks*BLOCK_M] int32 out
    block_expert_ptr,  # [max_blocks] int32 out
    num_slots_ptr,  # [1] int32 out
    num_pairs, max_blocks,
    NUM_EXPERTS: tl.constexpr, E_POW2: tl.constexpr, BLOCK_M: tl.constexpr, P_POW2: tl.constexpr,
    FILL: tl.constexpr,
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    pdl_enter(PDL)  # before any read of what earlier kernels write
    for s0 in range(0, max_blocks * BLOCK_M, FILL):  # padding everywhere, then the pairs on top
        s = s0 + tl.arange(0, FILL)
        tl.store(sorted_ptr + s, tl.zeros([FILL], tl.int32) + num_pairs, mask=s < max_blocks * BLOCK_M)
        tl.store(block_expert_ptr + s, tl.zeros([FILL], tl.int32) - 1, mask=s < max_blocks)
    pair, expert, kept, slot, num_blocks = sorted_slots(
        ids_ptr, weights_ptr, num_pairs, NUM_EXPERTS, E_POW2, BLOCK_M, P_POW2)
    tl.store(num_slots_ptr, num_blocks * BLOCK_M)
    tl.debug_barrier()
    tl.store(sorted_ptr + slot, pair, mask=kept)
    tl.store(block_expert_ptr + slot // BLOCK_M, expert, mask=kept & (slot % BLOCK_M == 0))


# ----------------------------------------------------------------------------- chunked path
@triton.jit(do_not_specialize=["num_pairs", "max_slots"])
def _align_hist_kernel(
    ids_ptr, weights_ptr, hist_ptr,  # hist: [num_chunks, E_POW2] int32 out
    sorted_ptr, num_pairs, max_slots,
    NUM_EXPERTS: tl.constexpr, E_POW2: tl.constexpr, CHUNK: tl.constexpr, FILL: tl.constexpr,
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    pdl_enter(PDL)  # before any read of what earlier kernels write
    pid = tl.program_id(0)
    p = pid * CHUNK + tl.arange(0, CHUNK)
    key, kept = pair_keys(ids_ptr, weights_ptr, p, p < num_pairs, NUM_EXPERTS)
    tl.store(hist_ptr + pid * E_POW2 + tl.arange(0, E_POW2), tl.histogram(key, E_POW2, mask=kept))
    # every slot starts as padding; _align_scatter_kernel (a later launch) overwrites the used ones
    for s0 in range(pid * FILL, max_slots, tl.num_programs(0) * FILL):
        s = s0 + tl.arange(0, FILL)
        tl.store(sorted_ptr + s, tl.zeros([FILL], tl.int32) + num_pairs, mask=s < max_slots)


@triton.jit(do_not_specialize=["num_chunks", "max_blocks"])
def _align_scan_kernel(
    hist_ptr,  # [num_chunks, E_POW2] int32
    base_ptr,  # [num_chunks, E_POW2] int32 out: first slot of chunk c's pairs of expert e
    block_expert_ptr, num_slots_ptr, num_chunks, max_blocks,
    E_POW2: tl.constexpr, BLOCK_M: tl.constexpr, ROWS: tl.constexpr, BROWS: tl.constexpr,
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    pdl_enter(PDL)  # before any read of what earlier kernels write
    experts = tl.arange(0, E_POW2)
    rows = tl.arange(0, ROWS)
    counts = tl.zeros([E_POW2], tl.int32)
    for c0 in range(0, num_chunks, ROWS):
        c = c0 + rows
        tile = tl.load(hist_ptr + c[:, None] * E_POW2 + experts[None, :], mask=c[:, None] < num_chunks, other=0)
        counts += tl.sum(tile, axis=0)
    nblk = (counts + BLOCK_M - 1) // BLOCK_M
    blk_end = tl.cumsum(nblk, axis=0)
    num_blocks = tl.sum(nblk, axis=0)
    tl.store(num_slots_ptr, num_blocks * BLOCK_M)
    for b0 in range(0, max_blocks, BROWS):
        b = b0 + tl.arange(0, BROWS)
        expert = tl.sum((blk_end[None, :] <= b[:, None]).to(tl.int32), axis=1)  # [BROWS]
        tl.store(block_expert_ptr + b, tl.where(b < num_blocks, expert, -1), mask=b < max_blocks)
    running = (blk_end - nblk) * BLOCK_M  # [E_POW2] first slot of each expert's segment
    for c0 in range(0, num_chunks, ROWS):
        c = c0 + rows
        ok = c[:, None] < num_chunks
        tile = tl.load(hist_ptr + c[:, None] * E_POW2 + experts[None, :], mask=ok, other=0)
        before = tl.cumsum(tile, axis=0) - tile + running[None, :]  # [ROWS, E_POW2] exclusive
        tl.store(base_ptr + c[:, None] * E_POW2 + experts[None, :], before, mask=ok)
        running += tl.sum(tile, axis=0)


@triton.jit(do_not_specialize=["num_pairs"])
def _align_scatter_kernel(
    ids_ptr, weights_ptr, base_ptr, sorted_ptr, num_pairs,
    NUM_EXPERTS: tl.constexpr, E_POW2: tl.constexpr, CHUNK: tl.constexpr,
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    pdl_enter(PDL)  # before any read of what earlier kernels write
    pid = tl.program_id(0)
    local = tl.arange(0, CHUNK)
    p = pid * CHUNK + local
    key, kept = pair_keys(ids_ptr, weights_ptr, p, p < num_pairs, NUM_EXPERTS)
    same = (key[:, None] == key[None, :]) & kept[None, :] & (local[None, :] < local[:, None])  # [C, C]
    rank = tl.sum(same.to(tl.int32), axis=1)  # kept pairs of the same expert earlier in the chunk
    base = tl.load(base_ptr + pid * E_POW2 + key, mask=kept, other=0)
    tl.store(sorted_ptr + base + rank, p, mask=kept)


# ----------------------------------------------------------------------------- host side
def moe_align_triton(
    topk_ids: torch.Tensor,
    topk_weights: torch.Tensor,
    num_experts: int,
    block_m: int,
    *,
    chunked: bool | None = None,
) -> AlignedRouting:
    """Block-aligned routing metadata on the device (no host sync, graph safe).

    ``topk_ids``/``topk_weights``: ``[T, k]`` or flat ``[P]``.
    ``P <= SMALL_MAX_PAIRS``: one single-program launch; otherwise (or ``chunked=True``)
    the three-launch chunked path.
    """
    ids = topk_ids.reshape(-1).contiguous()
    weights = topk_weights.reshape(-1).contiguous()
    num_pairs = ids.numel()
    device = ids.device
    prm = align_params(num_pairs, num_experts, block_m)
    sorted_pair_ids = torch.empty(prm.max_blocks * block_m, dtype=torch.int32, device=device)
    block_expert = torch.empty(prm.max_blocks, dtype=torch.int32, device=device)
    num_slots = torch.empty(1, dtype=torch.int32, device=device)
    routing = AlignedRouting(sorted_pair_ids, block_expert, num_slots, num_pairs, block_m)
    if chunked is None:
        chunked = num_pairs > SMALL_MAX_PAIRS
    if not chunked:
        if num_pairs > 32768:  # one program holds every pair; packed counts need sums < 2**16
            raise ValueError(f"{num_pairs} pairs are too many for the single-program kernel")
        _align_small_kernel[(1,)](
            ids, weights, sorted_pair_ids, block_expert, num_slots, num_pairs, prm.max_blocks,
            NUM_EXPERTS=num_experts, E_POW2=prm.e_pow2, BLOCK_M=block_m, P_POW2=prm.p_pow2, FILL=_FILL,
            num_warps=4, **pdl_launch(ids.device, "moe"),
        )
        return routing
    num_chunks = triton.cdiv(max(num_pairs, 1), _CHUNK)
    hist = torch.empty(num_chunks, prm.e_pow2, dtype=torch.int32, device=device)
    base = torch.empty_like(hist)
    _align_hist_kernel[(num_chunks,)](
        ids, weights, hist, sorted_pair_ids, num_pairs, prm.max_blocks * block_m,
        NUM_EXPERTS=num_experts, E_POW2=prm.e_pow2, CHUNK=_CHUNK, FILL=_FILL, num_warps=2, **pdl_launch(ids.device, "moe"),
    )
    rows = max(1, min(64, 4096 // prm.e_pow2))
    _align_scan_kernel[(1,)](
        hist, base, block_expert, num_slots, num_chunks, prm.max_blocks,
        E_POW2=prm.e_pow2, BLOCK_M=block_m, ROWS=rows, BROWS=rows, num_warps=4, **pdl_launch(ids.device, "moe"),
    )
    _align_scatter_kernel[(num_chunks,)](
        ids, weights, base, sorted_pair_ids, num_pairs,
        NUM_EXPERTS=num_experts, E_POW2=prm.e_pow2, CHUNK=_CHUNK, num_warps=2, **pdl_launch(ids.device, "moe"),
    )
    return routing
