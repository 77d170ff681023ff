"""Default tile choice and grid sizing of the Triton fused-MoE kernels (pure Python)."""

from __future__ import annotations

import pytest

from lynx.kernels.moe_config import TritonMoEConfig, default_config, grid_m


def test_block_m_per_batch() -> None:
    # measured (docs/performance.md section 7): 16-row blocks up to 32 tokens, 64 above
    assert [default_config(t, 2048, 768).block_m for t in (1, 16, 17, 32, 33, 64, 65, 4096)] == [
        16, 16, 16, 16, 64, 64, 64, 64]
    assert default_config(256, 2048, 768).block_n1 == 64  # prefill tiles


def test_grid_is_one_wave_and_never_exceeds_blocks() -> None:
    # Qwen3-30B-A3B gate_up at batch 16: 24 N tiles, 128 possible blocks, H200 (132 SMs)
    assert grid_m(128, 24, 132, 2) == 11  # 264 programs = 2 per SM
    assert grid_m(5, 24, 132, 2) == 5  # fewer possible blocks than the wave allows
    assert grid_m(128, 24, 132, 0) == 128  # persistence off
    # Mixtral gate_up: 448 N tiles already fill the GPU -> one program per possible block
    assert grid_m(10, 448, 132, 2) == 10
    assert grid_m(3, 1000, 4, 2) == 3


def test_metadata_and_sum_fused_only_for_small_batches() -> None:
    from lynx.kernels.moe_config import FUSED_MAX_TOKENS

    for t in (1, 8, FUSED_MAX_TOKENS):
        cfg = default_config(t, 2048, 768)
        assert cfg.align == "fused" and cfg.fuse_sum
    for t in (FUSED_MAX_TOKENS + 1, 32, 64, 4096):
        cfg = default_config(t, 2048, 768)
        assert cfg.align == "kernel" and not cfg.fuse_sum
    # block_m 64 with 4 stages of [64 x 128] + weight tiles needs ~128 KiB: one CTA per SM
    assert default_config(64, 2048, 768).stages1 == 3 and default_config(64, 2048, 768).stages2 == 3
    small = default_config(16, 2048, 768)  # three CTAs per SM with 3 stages (measured, section 8)
    assert (small.ctas_per_sm, small.stages1, small.stages2) == (3, 3, 3)
    assert default_config(32, 2048, 768).stages1 == 4
    with pytest.raises(ValueError):
        TritonMoEConfig(align="onehot")


def test_down_kernel_grid_can_differ() -> None:
    cfg = TritonMoEConfig()
    assert cfg.down_ctas_per_sm == cfg.ctas_per_sm
    assert cfg.with_(ctas_per_sm2=3).down_ctas_per_sm == 3 and cfg.with_(ctas_per_sm2=0).down_ctas_per_sm == 0
    with pytest.raises(ValueError, match="ctas_per_sm2"):
        cfg.with_(ctas_per_sm2=-1)


def test_persistent_kernel_by_default_up_to_16_tokens_and_switchable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LYNX_MOE_PERSISTENT", raising=False)
    assert [default_config(t, 2048, 768).persistent for t in (1, 16, 17, 64, 4096)] == [True, True, False, False,
                                                                                        False]
    monkeypatch.setenv("LYNX_MOE_PERSISTENT", "0")
    assert not any(default_config(t, 2048, 768).persistent for t in (1, 16, 17, 64))
    monkeypatch.setenv("LYNX_MOE_PERSISTENT", "1")
    assert [default_config(t, 2048, 768).persistent for t in (1, 16, 17, 64)] == [True, True, False, False]


def test_config_overrides_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """LYNX_MOE_CONFIG: per token range, typed fields, applied on top of the defaults."""
    from lynx.kernels.moe_config import config_overrides

    monkeypatch.delenv("LYNX_MOE_PERSISTENT", raising=False)
    monkeypatch.setenv("LYNX_MOE_CONFIG", " 33-64:block_m=16,align=kernel  8:persistent=0,ctas_per_sm2=none ")
    assert default_config(64, 2048, 768).block_m == 16 and default_config(32, 2048, 768).block_m == 16
    assert default_config(65, 2048, 768).block_m == 64  # outside every range: untouched
    assert not default_config(8, 2048, 768).persistent and default_config(9, 2048, 768).persistent
    assert default_config(8, 2048, 768).ctas_per_sm2 is None
    assert config_overrides("1-4:fuse_sum=0") == ((1, 4, (("fuse_sum", False),)),)
    monkeypatch.delenv("LYNX_MOE_CONFIG")
    assert default_config(64, 2048, 768).block_m == 64


@pytest.mark.parametrize("spec, match", [
    ("block_m=16", "LO-HI:field=value"),
    ("1-x:block_m=16", "LO-HI:field=value"),
    ("1-4:blockm=16", "'blockm=16' is not field=value"),
    ("1-4:block_m=sixteen", "bad value 'sixteen' for block_m"),
    ("1-4:persistent=yes", "bad value 'yes' for persistent"),
])
def test_config_overrides_name_the_problem(spec: str, match: str) -> None:
    from lynx.kernels.moe_config import config_overrides

    with pytest.raises(ValueError, match=match):
        config_overrides(spec)


def test_config_overrides_are_validated_where_they_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LYNX_MOE_PERSISTENT", raising=False)
    monkeypatch.setenv("LYNX_MOE_CONFIG", "1-16:stages1=4")  # the one-launch kernel needs equal stages
    with pytest.raises(ValueError, match="LYNX_MOE_CONFIG 1-16 at 4 tokens: persistent=True needs"):
        default_config(4, 2048, 768)
    assert default_config(17, 2048, 768).stages1 == 4  # outside the range: the default
