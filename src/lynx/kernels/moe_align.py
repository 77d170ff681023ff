"""Block-aligned routing metadata for grouped expert GEMMs (pure PyTorch reference).

A grouped MoE GEMM processes the ``P = T*k`` (token, slot) pairs expert by expert in
row blocks of ``BLOCK_M``. The metadata says which pairs form each block:

* ``sorted_pair_ids [max_blocks*BLOCK_M]`` int32: pair ids ``p = t*k + j`` grouped by
  expert (ascending expert id, ascending ``p`` inside an expert), each expert's segment
  padded up to a multiple of ``BLOCK_M`` with the sentinel ``P``;
* ``block_expert [max_blocks]`` int32: the expert of each block, ``-1`` past the end;
* ``num_slots [1]`` int32: the number of used slots (a multiple of ``BLOCK_M``).

Every buffer has a size fixed by ``(P, E, BLOCK_M)`` alone, so the GEMM launch grid is
static (CUDA-graph safe) and the real block count is read on the device. Pairs whose
routing weight is zero are dropped (they add exactly zero), so an expert that only
padding tokens point at is never read. The Triton kernels in ``triton_moe_align`` (and
the legacy one in ``moe_align_legacy``) must produce exactly what :func:`moe_align_reference`
produces; the tests compare them. At decode sizes the GEMM kernels derive the same blocks
in-kernel from the routing instead of reading these buffers (same helpers, same result).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AlignedRouting:
    """Device-side routing metadata (see module docstring); sizes depend only on P, E, BLOCK_M."""

    sorted_pair_ids: torch.Tensor  # [max_blocks * BLOCK_M] int32, sentinel = num_pairs
    block_expert: torch.Tensor  # [max_blocks] int32, -1 for unused blocks
    num_slots: torch.Tensor  # [1] int32, used slots = BLOCK_M * used blocks
    num_pairs: int  # P = T * k
    block_m: int


def max_num_blocks(num_pairs: int, num_experts: int, block_m: int) -> int:
    """Static upper bound on the number of ``block_m`` row blocks.

    ``sum_e ceil(c_e / B) <= (sum_e c_e + A*(B-1)) / B`` with ``sum_e c_e <= P`` and at most
    ``A = min(E, P)`` experts holding a pair. Decode-sized batches therefore get a bound
    near the number of active experts instead of ``E * (something)``.
    """
    active = min(num_experts, num_pairs)
    return max(1, (num_pairs + active * (block_m - 1) + block_m - 1) // block_m)


def routing_keys(topk_ids: torch.Tensor, topk_weights: torch.Tensor, num_experts: int) -> torch.Tensor:
    """``[P]`` int64 expert id per pair (``p = t*k + j``), ``num_experts`` for dropped pairs."""
    ids = topk_ids.reshape(-1).long()  # [P]
    return torch.where(topk_weights.reshape(-1) != 0, ids, num_experts)  # [P]


def moe_align_reference(
    topk_ids: torch.Tensor, topk_weights: torch.Tensor, num_experts: int, block_m: int
) -> AlignedRouting:
    """Compute :class:`AlignedRouting` with ordinary PyTorch ops (reference; host-syncs)."""
    num_pairs = topk_ids.numel()
    device = topk_ids.device
    max_blocks = max_num_blocks(num_pairs, num_experts, block_m)
    keys = routing_keys(topk_ids, topk_weights, num_experts)  # [P]
    counts = torch.bincount(keys, minlength=num_experts + 1)[:num_experts]  # [E]
    padded = (counts + block_m - 1) // block_m * block_m  # [E]
    starts = torch.cumsum(padded, 0) - padded  # [E] exclusive prefix sum
    order = torch.sort(keys, stable=True).indices  # [P] pairs grouped by expert, ascending p

    sorted_pair_ids = torch.full((max_blocks * block_m,), num_pairs, dtype=torch.int32, device=device)
    block_expert = torch.full((max_blocks,), -1, dtype=torch.int32, device=device)
    pos = 0
    for expert, (count, start, pad) in enumerate(zip(counts.tolist(), starts.tolist(), padded.tolist())):
        if count == 0:
            continue
        sorted_pair_ids[start : start + count] = order[pos : pos + count].to(torch.int32)
        block_expert[start // block_m : (start + pad) // block_m] = expert
        pos += count
    num_slots = padded.sum().reshape(1).to(torch.int32)  # [1]
    return AlignedRouting(sorted_pair_ids, block_expert, num_slots, num_pairs, block_m)
