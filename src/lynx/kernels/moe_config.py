"""Tile configuration of the Triton fused-MoE kernels and the default (decode-first) choice.

Decode is memory-bound: each active expert's weights should stream from HBM once, spread
over enough CTAs to keep all 132 SMs of an H200 issuing loads. The defaults follow from
that rather than from an autotuner (autotuning inside CUDA-graph capture is not an option
and the shapes are fixed per model anyway):

* ``block_m``: 16 up to 32 tokens, 64 above. Routing ids are duplicate-free per token, so
  an expert holds at most ``T`` pairs; with ``block_m >= T`` every active expert is exactly
  one row block, i.e. one program per (active expert, N tile) that reads its weight tile
  once. Batches of 17-32 tokens still measured 10-19 us per layer faster with 16-row
  blocks (a popular expert then takes two blocks, its weights re-read mostly from L2)
  than with 32 (docs/performance.md section 7); at 64 tokens skewed routing puts up to
  ~60 pairs on one expert and 16-row blocks lose, so 64 stays.
* narrow N tiles (32 gate+up columns, 64 down columns) with ``BLOCK_K = 128``: about
  8-16 KiB of weights per pipeline stage and 24-32 tiles per expert, so even 8 active
  experts give ~200-250 CTAs.
* two CTAs per SM must fit in shared memory (228 KiB on an H200), since the persistent grid
  below assumes them: a pipeline stage holds a ``[block_m, BLOCK_K]`` activation tile and
  the weight tile(s), so ``block_m = 64`` with 4 stages of 128-wide K (128 KiB, sm_90
  compile) fits only one CTA and the "one wave" grid runs as two -- the likely reason batch
  64 measured b = 2.93 us/expert against 2.43 at batch 16 (545f084). Batches above 32
  tokens therefore use 3 stages (96 KiB).
* up to 16 tokens three CTAs per SM with 3 stages (40 KiB of shared memory each in the sm_90
  compile; 4 stages would fit too but were not timed with 3 CTAs): on the H200 47.9 / 80.5 /
  107.4 µs per layer at 15 / 31 / 44 skewed experts against 49.7 / 81.6 / 109.5 with two
  CTAs and 4 stages (docs/performance.md section 8); at 64 tokens three were no better.
* a persistent M loop: the grid's M extent is capped at ``ctas_per_sm * SMs / n_tiles``
  and each program strides over the real blocks (count derived on the device), so the
  static worst-case grid does not launch thousands of programs that only check and exit.
  Shapes with many N tiles (Mixtral) skip persistence, see :func:`grid_m`.
* ``align = "fused"``: the GEMM programs derive their blocks from the routing themselves
  (:mod:`lynx.kernels.triton_moe_align`); with ``align = "kernel"`` a separate metadata
  launch does it once. ``"legacy"`` is the first, one-hot align kernel (kept for
  old-vs-new measurements only).
* ``fuse_sum``: the down kernel's last program per N tile sums each token's k rows
  (deterministic), instead of a third launch.
* ``persistent``, on by default up to 16 tokens (``LYNX_MOE_PERSISTENT=0`` turns it off):
  both GEMMs in one launch whose programs wait for the gate_up tiles they need
  (:mod:`lynx.kernels.triton_moe_persistent`). On the H200 it equals the two launches bit
  for bit and saves 1.7-6.4 us per layer at 1-16 tokens (a = 11.2 vs 14.2 us at batch 16);
  at 64 tokens it lost 2-3 us, so larger batches keep the separate launches
  (docs/performance.md section 9). Shapes whose N tiles exceed half a wave (Mixtral-8x7B)
  keep them too (:func:`lynx.kernels.triton_moe_persistent_host.grid_suits_one_launch`).
* ``LYNX_MOE_CONFIG`` overrides fields per token range for benchmarks, e.g.
  ``lynx bench decode --variant bm16="LYNX_MOE_CONFIG=33-64:block_m=16"`` (:func:`config_overrides`).
* ``token_rows`` (opt-in, ``LYNX_MOE_TOKEN_ROWS=1``): the one-launch kernel without sorting
  (one block per active expert, row t = token t). 5-6 us faster per layer than sorted
  blocks at batch 16 with 24-41 Qwen3-30B-A3B experts in isolation, but the decode step
  did not gain (0.99x top-k, 1.00x LYNX at batch 16): not the default.
* Both fusions save launches but make every program redo the metadata and leave a serial
  tail (one program per N tile reads all ``T*k`` rows); measured on the H200 they pay up
  to ``FUSED_MAX_TOKENS`` = 16 tokens and cost 4-9 us per layer at 32-64 tokens.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, fields, replace

from lynx.kernels.env_flags import env_flag

ALIGN_MODES = ("fused", "kernel", "legacy")
FUSED_MAX_TOKENS = 16  # metadata and k-sum inside the GEMM kernels up to this batch
PERSISTENT_ENV = "LYNX_MOE_PERSISTENT"  # "0": two launches also up to 16 tokens (default "1": one launch)
TOKEN_ROWS_ENV = "LYNX_MOE_TOKEN_ROWS"  # "1": token-row blocks in the one-launch kernel (unmeasured: off)


@dataclass(frozen=True)
class TritonMoEConfig:
    """Tiles and launch parameters of the fused-MoE kernels."""

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
    ctas_per_sm2: int | None = None  # the down kernel's, if different (None: ctas_per_sm)
    block_h_sum: int = 1024  # top-k sum kernel: columns of H per program
    align: str = "fused"  # block metadata: "fused" into the GEMMs, separate "kernel", or "legacy"
    fuse_sum: bool = True  # k-sum in the down kernel's last program per N tile (no sum launch)
    # one launch for both GEMMs (default up to 16 tokens) (lynx.kernels.triton_moe_persistent); needs align="fused",
    # fuse_sum, ctas_per_sm >= 1, one warps/stages setting (warps2 == warps1, stages2 == stages1) and
    # no separate down grid (ctas_per_sm2 None); batches above SMALL_MAX_PAIRS pairs take the two launches
    persistent: bool = False
    # with persistent: one row block per active expert whose row t is token t (T <= block_m; ids
    # distinct per token cost one pass, a repeated id one more): no per-program sort of the pairs
    token_rows: bool = False

    def __post_init__(self) -> None:
        if self.align not in ALIGN_MODES:
            raise ValueError(f"align must be one of {ALIGN_MODES}, got {self.align!r}")
        for name in ("ctas_per_sm", "ctas_per_sm2"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.persistent:
            problems = [msg for bad, msg in (
                (self.align != "fused", f"align='fused' (got {self.align!r})"),
                (not self.fuse_sum, "fuse_sum=True"),
                (self.ctas_per_sm < 1, f"ctas_per_sm >= 1, all programs resident (got {self.ctas_per_sm})"),
                (self.ctas_per_sm2 is not None, "ctas_per_sm2=None (one grid for both phases)"),
                ((self.warps2, self.stages2) != (self.warps1, self.stages1),
                 "warps2 == warps1 and stages2 == stages1 (one kernel)"),
            ) if bad]
            if problems:
                raise ValueError("persistent=True needs " + ", ".join(problems))
        if self.token_rows and not self.persistent:
            raise ValueError("token_rows=True needs persistent=True (only the one-launch kernel has token-row blocks)")

    @property
    def down_ctas_per_sm(self) -> int:
        """Programs per SM of the down kernel's persistent grid."""
        return self.ctas_per_sm if self.ctas_per_sm2 is None else self.ctas_per_sm2

    def with_(self, **changes: object) -> "TritonMoEConfig":
        """Copy with some fields changed (for sweeps)."""
        return replace(self, **changes)


CONFIG_ENV = "LYNX_MOE_CONFIG"  # e.g. "33-64:block_m=16,align=kernel 1-16:ctas_per_sm=2" (benchmarks)


@functools.lru_cache(maxsize=64)
def config_overrides(spec: str) -> tuple[tuple[int, int, tuple[tuple[str, object], ...]], ...]:
    """``LYNX_MOE_CONFIG``: whitespace-separated ``LO-HI:field=value,...`` (token counts LO..HI
    inclusive; ``N`` alone is ``N-N``) applied on top of :func:`default_config`, so that
    ``lynx bench decode --variant`` (whose own separator is ``;``) can compare MoE launch
    configurations end to end. Values take the field's type (``0``/``1`` for booleans,
    ``none`` for ``ctas_per_sm2``)."""
    defaults = {f.name: f.default for f in fields(TritonMoEConfig)}
    out = []
    for part in spec.split():
        span, sep, body = part.partition(":")
        lo, dash, hi = span.strip().partition("-")
        if not sep or not lo.strip().isdigit() or (dash and not hi.strip().isdigit()):
            raise ValueError(f"{CONFIG_ENV}: {part!r} is not LO-HI:field=value,... (e.g. 33-64:block_m=16)")
        changes: dict[str, object] = {}
        for item in filter(None, (i.strip() for i in body.split(","))):
            name, eq, value = (x.strip() for x in item.partition("="))
            if not eq or name not in defaults:
                raise ValueError(f"{CONFIG_ENV}: {item!r} is not field=value with a field among {sorted(defaults)}")
            default = defaults[name]
            try:
                if isinstance(default, bool):
                    if value not in ("0", "1"):
                        raise ValueError
                    changes[name] = value == "1"
                elif isinstance(default, str):
                    changes[name] = value
                elif default is None and value.lower() == "none":
                    changes[name] = None
                else:
                    changes[name] = int(value)
            except ValueError:
                raise ValueError(f"{CONFIG_ENV}: bad value {value!r} for {name}") from None
        out.append((int(lo), int(hi) if dash else int(lo), tuple(changes.items())))
    return tuple(out)


def default_config(num_tokens: int, hidden_size: int, intermediate_size: int) -> TritonMoEConfig:
    """Decode-first defaults (module docstring), with any ``LYNX_MOE_CONFIG`` overrides
    (:func:`config_overrides`) for this token count."""
    cfg = _builtin_config(num_tokens, hidden_size, intermediate_size)
    for lo, hi, changes in config_overrides(os.environ.get(CONFIG_ENV, "")):
        if lo <= num_tokens <= hi:
            try:
                cfg = cfg.with_(**dict(changes))
            except ValueError as exc:
                raise ValueError(f"{CONFIG_ENV} {lo}-{hi} at {num_tokens} tokens: {exc}") from None
    return cfg


def _builtin_config(num_tokens: int, hidden_size: int, intermediate_size: int) -> TritonMoEConfig:
    """Decode-first defaults (module docstring); prefill-sized batches get larger tiles."""
    if num_tokens <= FUSED_MAX_TOKENS:  # 3 CTAs per SM, 3 stages: 1-4% faster at 15-44 experts
        # one launch unless LYNX_MOE_PERSISTENT=0 (read at each call, e.g. for `lynx bench decode --variant`)
        persistent = env_flag(PERSISTENT_ENV, True)
        token_rows = persistent and env_flag(TOKEN_ROWS_ENV, False)
        return TritonMoEConfig(block_m=16, ctas_per_sm=3, stages1=3, stages2=3, persistent=persistent,
                               token_rows=token_rows)
    separate = dict(align="kernel", fuse_sum=False)
    if num_tokens <= 32:
        return TritonMoEConfig(block_m=16, **separate)
    if num_tokens <= 64:  # block_m 64: 3 stages so that two CTAs fit per SM (see module doc)
        return TritonMoEConfig(block_m=64, stages1=3, stages2=3, **separate)
    # Many tokens per expert: wider N tiles reuse each A tile more; fewer stages fit in smem.
    return TritonMoEConfig(
        block_m=64, block_n1=64, block_k1=64, stages1=3, block_n2=128, block_k2=64, stages2=3,
        warps1=4, warps2=8, **separate,
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
