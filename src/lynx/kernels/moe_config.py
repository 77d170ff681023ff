"""Tile configuration of the Triton fused-MoE kernels and the default (decode-first) choice.

Decode is memory-bound: each active expert's weights should stream from HBM once, spread
over enough CTAs to keep all 132 SMs of an H200 issuing loads. The defaults follow from
that rather than from an autotuner (autotuning inside CUDA-graph capture is not an option
and the shapes are fixed per model anyway):

* ``block_m`` = the smallest tile (16, 32 or 64) covering the batch. Routing ids are
  duplicate-free per token, so an expert holds at most ``T`` pairs; with ``block_m >= T``
  every active expert is exactly one row block, i.e. one program per (active expert,
  N tile) that reads its weight tile once and multiplies all its tokens.
* narrow N tiles (32 gate+up columns, 64 down columns) with ``BLOCK_K = 128``: about
  8-16 KiB of weights per pipeline stage and 24-32 tiles per expert, so even 8 active
  experts give ~200-250 CTAs.
* a persistent M loop: the grid's M extent is capped at ``ctas_per_sm * SMs / n_tiles``
  and each program strides over the real blocks (count read on the device), so the static
  worst-case grid does not launch thousands of programs that only check and exit. The cap
  rounds down and ``ctas_per_sm`` (2) stays within the CTAs an SM can hold at once (the
  default tiles use ~60 KiB of shared memory, 3 fit): a second partial wave of programs,
  each looping over as many blocks as the first, would double the time. Shapes with many
  N tiles (Mixtral) skip persistence, see :func:`grid_m`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class TritonMoEConfig:
    """Tiles and launch parameters of the three fused-MoE kernels."""

    block_m: int = 16  # rows (token, slot pairs) per block; one expert per block
    block_n1: int = 32  # gate_up kernel: columns of I per tile (gate and up tiles each)
    block_k1: int = 128  # gate_up kernel: reduction tile over H
    warps1: int = 4
    stages1: int = 4
    block_n2: int = 64  # down kernel: columns of H per tile
    block_k2: int = 128  # down kernel: reduction tile over I
    warps2: int = 4
    stages2: int = 4
    ctas_per_sm: int = 2  # persistent M-grid: programs per SM; 0 = one program per possible block
    block_h_sum: int = 1024  # top-k sum kernel: columns of H per program

    def with_(self, **changes: int) -> "TritonMoEConfig":
        """Copy with some fields changed (for sweeps)."""
        return replace(self, **changes)


def pick_block_m(num_tokens: int) -> int:
    """Smallest of 16/32/64 that holds every pair of one expert (<= T pairs per expert)."""
    for block_m in (16, 32):
        if num_tokens <= block_m:
            return block_m
    return 64


def default_config(num_tokens: int, hidden_size: int, intermediate_size: int) -> TritonMoEConfig:
    """Decode-first defaults; prefill-sized batches get larger tiles (compute matters there)."""
    block_m = pick_block_m(num_tokens)
    if num_tokens <= 64:
        return TritonMoEConfig(block_m=block_m)
    # Many tokens per expert: wider N tiles reuse each A tile more; fewer stages fit in smem.
    return TritonMoEConfig(
        block_m=block_m, block_n1=64, block_k1=64, stages1=3, block_n2=128, block_k2=64, stages2=3,
        warps1=4, warps2=8,
    )


def grid_m(max_blocks: int, n_tiles: int, num_sms: int, ctas_per_sm: int) -> int:
    """M extent of a kernel's grid: one wave of programs, never more than blocks.

    When the N tiles alone fill a quarter of the wave (e.g. Mixtral's I = 14336: 448 tiles)
    a persistent grid would hand each program many blocks in a row and leave a ragged last
    wave; one program per possible block is then better, and its dead programs are few.
    """
    wave = ctas_per_sm * num_sms
    if ctas_per_sm <= 0 or 4 * n_tiles >= wave:
        return max_blocks
    return max(1, min(max_blocks, wave // n_tiles))  # floor: never more than one wave
