"""The first Triton align kernel (one-hot, single CTA), kept only as the "old" side of the
old-vs-new comparison in ``lynx bench kernels`` (``TritonMoEConfig(align="legacy")``).
Measured on an H200: 12.9 us at 16 tokens x top-8 (P = 128), 38 us at P = 512, 135 us at
P = 2048 -- every step is a serial chunk loop of global loads and CTA-wide scans. The
production path is :mod:`lynx.kernels.triton_moe_align`.

One program does everything (decode has ~10^2 pairs, so a single CTA is faster than any
multi-kernel sort + histogram + scan pipeline, whose launches alone would cost several
microseconds inside a CUDA graph). Pairs are processed in chunks of ``CHUNK`` as a
``[CHUNK, E_POW2]`` one-hot matrix:

1. fill every slot with the padding sentinel;
2. per-expert counts = column sums of the one-hot chunks (dropped pairs, weight 0, get the
   id -1 and therefore an all-zero row);
3. padded segment ends = cumsum of counts rounded up to ``BLOCK_M``; the expert of block
   ``b`` is the number of segments ending at or before slot ``b*BLOCK_M``;
4. a pair's slot = its segment start + its rank among earlier pairs of the same expert
   (inclusive column cumsum of the chunk + running counts of earlier chunks).

Result is identical to :func:`~lynx.kernels.moe_align.moe_align_reference` (same
ascending-pair order inside an expert). No host sync; all sizes static given (P, E, BLOCK_M).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from lynx.kernels.moe_align import AlignedRouting, max_num_blocks

ONEHOT_ELEMS = 4096  # default CHUNK * E_POW2 per one-hot tile: 32 int32 registers/thread at 4 warps
_FILL = 1024  # slots written per iteration of the sentinel fill


@triton.jit
def _onehot_chunk(ids_ptr, weights_ptr, p, num_pairs, experts, NUM_EXPERTS: tl.constexpr):
    """``[CHUNK, E_POW2]`` int32 one-hot of pairs ``p``; dropped or out-of-range pairs are 0 rows."""
    in_range = p < num_pairs
    ids = tl.load(ids_ptr + p, mask=in_range, other=-1).to(tl.int32)  # [CHUNK]
    w = tl.load(weights_ptr + p, mask=in_range, other=0.0)  # [CHUNK]
    # zero weight contributes nothing, so read nothing; -1 matches no column (E_POW2 may be > E)
    ids = tl.where((w != 0) & (ids < NUM_EXPERTS), ids, -1)
    return (ids[:, None] == experts[None, :]).to(tl.int32)  # [CHUNK, E_POW2]


@triton.jit(do_not_specialize=["num_pairs", "max_blocks", "max_slots"])
def _moe_align_kernel(
    ids_ptr,  # [P] int64 expert ids, pair p = t*k + j
    weights_ptr,  # [P] float routing weights
    sorted_ptr,  # [max_blocks*BLOCK_M] int32 out
    block_expert_ptr,  # [max_blocks] int32 out
    num_slots_ptr,  # [1] int32 out
    num_pairs,
    max_blocks,
    max_slots,  # max_blocks * BLOCK_M
    NUM_EXPERTS: tl.constexpr,
    E_POW2: tl.constexpr,
    BLOCK_M: tl.constexpr,
    CHUNK: tl.constexpr,
    FILL: tl.constexpr,
):
    experts = tl.arange(0, E_POW2)  # [E_POW2]
    chunk = tl.arange(0, CHUNK)  # [CHUNK]

    # 1) every slot starts as padding (sentinel = num_pairs)
    for s0 in range(0, max_slots, FILL):
        s = s0 + tl.arange(0, FILL)
        tl.store(sorted_ptr + s, tl.zeros([FILL], tl.int32) + num_pairs, mask=s < max_slots)

    # 2) per-expert pair counts
    counts = tl.zeros([E_POW2], tl.int32)
    for p0 in range(0, num_pairs, CHUNK):
        counts += tl.sum(_onehot_chunk(ids_ptr, weights_ptr, p0 + chunk, num_pairs, experts, NUM_EXPERTS), axis=0)

    # 3) padded segments and block -> expert map
    padded = (counts + BLOCK_M - 1) // BLOCK_M * BLOCK_M  # [E_POW2]
    seg_end = tl.cumsum(padded, axis=0)  # [E_POW2] inclusive
    seg_start = seg_end - padded  # [E_POW2]
    total = tl.sum(padded, axis=0)
    tl.store(num_slots_ptr, total)
    for b0 in range(0, max_blocks, CHUNK):
        b = b0 + chunk  # [CHUNK] block ids
        first_slot = b * BLOCK_M
        ended = (seg_end[None, :] <= first_slot[:, None]).to(tl.int32)  # [CHUNK, E_POW2]
        expert = tl.where(first_slot < total, tl.sum(ended, axis=1), -1)  # [CHUNK]
        tl.store(block_expert_ptr + b, expert, mask=b < max_blocks)

    # the scatter below overwrites sentinels written by other threads in step 1
    tl.debug_barrier()

    # 4) scatter each pair to seg_start[e] + rank within e
    running = tl.zeros([E_POW2], tl.int32)  # pairs of each expert in earlier chunks
    for p0 in range(0, num_pairs, CHUNK):
        p = p0 + chunk
        onehot = _onehot_chunk(ids_ptr, weights_ptr, p, num_pairs, experts, NUM_EXPERTS)
        rank = tl.cumsum(onehot, axis=0) - 1 + running[None, :]  # [CHUNK, E_POW2]
        slot = tl.sum(onehot * (seg_start[None, :] + rank), axis=1)  # [CHUNK]
        keep = tl.sum(onehot, axis=1) > 0  # [CHUNK]
        tl.store(sorted_ptr + slot, p.to(tl.int32), mask=keep)
        running += tl.sum(onehot, axis=0)


def moe_align_legacy(
    topk_ids: torch.Tensor,
    topk_weights: torch.Tensor,
    num_experts: int,
    block_m: int,
    onehot_elems: int = ONEHOT_ELEMS,
    num_warps: int = 4,
) -> AlignedRouting:
    """Block-aligned routing metadata on the device (one single-CTA launch, no sync).

    ``onehot_elems``/``num_warps`` trade serial chunk steps against per-step work (tuning).
    """
    num_pairs = topk_ids.numel()
    device = topk_ids.device
    max_blocks = max_num_blocks(num_pairs, num_experts, block_m)
    sorted_pair_ids = torch.empty(max_blocks * block_m, dtype=torch.int32, device=device)
    block_expert = torch.empty(max_blocks, dtype=torch.int32, device=device)
    num_slots = torch.empty(1, dtype=torch.int32, device=device)
    e_pow2 = max(16, triton.next_power_of_2(num_experts))
    chunk = max(16, min(triton.next_power_of_2(max(num_pairs, max_blocks)), onehot_elems // e_pow2))
    _moe_align_kernel[(1,)](
        topk_ids.reshape(-1).contiguous(), topk_weights.reshape(-1).contiguous(),
        sorted_pair_ids, block_expert, num_slots, num_pairs, max_blocks, max_blocks * block_m,
        NUM_EXPERTS=num_experts, E_POW2=e_pow2, BLOCK_M=block_m, CHUNK=chunk, FILL=_FILL,
        num_warps=num_warps,
    )
    return AlignedRouting(sorted_pair_ids, block_expert, num_slots, num_pairs, block_m)
