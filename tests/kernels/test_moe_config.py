"""Default tile choice and grid sizing of the Triton fused-MoE kernels (pure Python)."""

from __future__ import annotations

from lynx.kernels.moe_config import default_config, grid_m, pick_block_m


def test_block_m_holds_one_expert_for_decode_batches() -> None:
    # ids are duplicate-free per token, so an expert holds <= T pairs: one block per expert
    assert [pick_block_m(t) for t in (1, 16, 17, 32, 33, 64, 65, 4096)] == [16, 16, 32, 32, 64, 64, 64, 64]
    assert default_config(16, 2048, 768).block_m == 16
    assert default_config(256, 2048, 768).block_n1 == 64  # prefill tiles


def test_grid_is_one_wave_and_never_exceeds_blocks() -> None:
    # Qwen3-30B-A3B gate_up at batch 16: 24 N tiles, 128 possible blocks, H200 (132 SMs)
    assert grid_m(128, 24, 132, 2) == 11  # 264 programs = 2 per SM
    assert grid_m(5, 24, 132, 2) == 5  # fewer possible blocks than the wave allows
    assert grid_m(128, 24, 132, 0) == 128  # persistence off
    # Mixtral gate_up: 448 N tiles already fill the GPU -> one program per possible block
    assert grid_m(10, 448, 132, 2) == 10
    assert grid_m(3, 1000, 4, 2) == 3
