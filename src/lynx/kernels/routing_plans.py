"""Launch plans of the Triton routing kernels and their configuration (what runs, not how).

Plans (see :mod:`lynx.kernels.routing_kernels` and :mod:`lynx.kernels.routing_coop`): LYNX
and OEA batches of at least ``coop_min_rows`` rows run the cooperative plan (one launch, a row
block per program, grid barriers); smaller LYNX batches of at most ``fused_max_rows`` rows (OEA:
``oea_fused_max_rows``) run as one program; the rest as ``active_kernel`` + ``route_kernel``
over blocks of ``block_rows`` rows. Plain top-k is one launch of ``route_kernel`` over row
blocks. Defaults from ``lynx bench routing`` on the H200 (N=128, k=8): one row per program
beats four for top-k (2.26 vs 3.68 µs at T=16, section 8 of docs/performance.md); the
cooperative plan beats the single program from 8 rows (LYNX 5.17 vs 5.46 µs, OEA 3.84 vs
4.00; at 4 rows 5.20 vs 4.83) and the split plan everywhere above (LYNX T=64: 6.95 vs
10.89 µs; OEA 4.25 vs 5.52), with one row and one warp per program (section 10).
Every choice depends only on Python values (``T``, ``N``, the policy, the device's SM count),
so a call can be captured in a CUDA graph. :mod:`lynx.kernels.routing_triton` launches them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

import torch

from lynx.kernels.routing_coop import coop_grid, max_coop_programs
from lynx.kernels.routing_tiles import next_pow2


@dataclass(frozen=True)
class RoutingKernelConfig:
    """Launch choices of the routing kernels (per call; all static given T and N)."""

    fused_max_rows: int = 32  # LYNX: batches of at most this many rows run fused
    oea_fused_max_rows: int = 8  # OEA: the same bound (its split plan wins earlier)
    block_rows: int = 1  # split path and top-k: rows per program, batches up to 128 rows
    block_rows_large: int = 4  # the same above 128 rows (unmeasured there: the earlier default, since
    # LYNX/OEA's split plan does O(T) work per block and one row per block would multiply it by T)
    fused_max_elems: int = 16384  # fused tile [T_pow2, N_pow2] bound (registers)
    chunk_elems: int = 8192  # batch-wide loops take chunk_elems // N_pow2 rows per step
    warps_per_row_elems: int = 256  # one warp per this many tile entries, clamped to [1, 8]
    fused_warps: int = 0  # warps of the fused program (0: from its tile size, at most 4 up to 16 rows)
    active_warps: int = 0  # warps of active_kernel for LYNX (0: from its chunk size)
    lynx_pack64: bool = False  # LYNX picks on one int64 key (16-bit logits only), see lynx_picks
    coop_min_rows: int = 8  # LYNX/OEA batches of at least this many rows run the cooperative plan (0: never)
    coop_block_rows: int = 1  # its rows per program (more where programs would outnumber the SMs)
    coop_warps: int = 0  # its warps per program (0: from the tile size)
    coop_local_sums_max_rows: int = 0  # LYNX up to this many rows: s' per program, one barrier (unmeasured: 0)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "lynx_pack64" and (not isinstance(value, int) or value < 0):
                raise ValueError(f"RoutingKernelConfig.{f.name} must be an integer >= 0, got {value!r}")
        if min(self.block_rows, self.block_rows_large, self.warps_per_row_elems, self.chunk_elems,
               self.coop_block_rows) < 1:
            raise ValueError("RoutingKernelConfig: block_rows, block_rows_large, warps_per_row_elems, "
                             "chunk_elems and coop_block_rows must be >= 1")
        for name in ("fused_warps", "active_warps", "coop_warps"):
            if getattr(self, name) not in (0, 1, 2, 4, 8, 16, 32):
                raise ValueError(f"RoutingKernelConfig.{name} must be 0 (automatic) or a power of two up to 32")

    def with_(self, **changes: int) -> RoutingKernelConfig:
        """Copy with some fields changed (for sweeps)."""
        return replace(self, **changes)


CONFIG_ENV = "LYNX_ROUTING_KERNEL_CONFIG"  # e.g. "fused_max_rows=64,fused_warps=16" (benchmarks)


def config_from_spec(spec: str) -> RoutingKernelConfig:
    """The default config with ``name=value`` fields (comma-separated integers) changed."""
    known = {f.name for f in fields(RoutingKernelConfig)}
    changes: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in known:
            raise ValueError(f"{CONFIG_ENV}: {item!r} is not name=value with a name among {sorted(known)}")
        try:
            changes[name] = int(value)
        except ValueError:
            raise ValueError(f"{CONFIG_ENV}: {name} must be an integer, got {value.strip()!r}") from None
    return RoutingKernelConfig(**changes)


DEFAULT_CONFIG = config_from_spec(os.environ.get(CONFIG_ENV, ""))  # read once, at import


def _warps(tile_elems: int, cfg: RoutingKernelConfig) -> int:
    return max(1, min(8, next_pow2(tile_elems // cfg.warps_per_row_elems)))


def _fused_warps(rows: int, cols: int, cfg: RoutingKernelConfig) -> int:
    """Warps of the single-program plan: from the tile size, but at most 4 up to 16 rows.

    Measured on the H200 (``docs/perf/2026-11-29-r5-c1bd641-routing.json``, variant
    ``triton-fused-w4``, N=128): at 16 rows 4 warps took 7.29 us (LYNX) / 5.58 us (OEA) per
    call against 7.81 / 5.84 with the 8 the tile size gives; the selection loop's row
    reductions are cheaper within fewer warps. Larger fused tiles were not measured with 4.
    """
    warps = _warps(rows * cols, cfg)
    return min(4, warps) if rows <= 16 else warps


def routing_plan(num_rows: int, num_experts: int, policy: str, cfg: RoutingKernelConfig,
                 device: torch.device) -> str:
    """``"topk"`` (plain top-k), ``"coop"`` (:mod:`lynx.kernels.routing_coop`, one launch of many
    programs), ``"fused"`` (one program) or ``"split"`` (two launches) for a call of this shape."""
    if policy == "topk":
        return "topk"
    if cooperative_grid(num_rows, num_experts, policy, cfg, device) is not None:
        return "coop"
    return "fused" if plan_is_fused(num_rows, num_experts, policy, cfg) else "split"


def cooperative_grid(num_rows: int, num_experts: int, policy: str, cfg: RoutingKernelConfig,
                     device: torch.device) -> tuple[int, int] | None:
    """``(BT, programs)`` where a LYNX/OEA call of this shape runs the cooperative plan, else None."""
    if policy == "topk" or not 0 < cfg.coop_min_rows <= num_rows:
        return None
    return coop_grid(num_rows, next_pow2(num_experts), cfg.coop_block_rows, cfg.fused_max_elems,
                     max_coop_programs(device))


def plan_is_fused(num_rows: int, num_experts: int, policy: str, cfg: RoutingKernelConfig) -> bool:
    """Whether a LYNX/OEA call of this shape runs as a single program."""
    if policy == "topk":
        return False
    tile = next_pow2(num_rows) * next_pow2(num_experts)
    max_rows = cfg.oea_fused_max_rows if policy == "oea" else cfg.fused_max_rows
    return num_rows <= max_rows and tile <= cfg.fused_max_elems
