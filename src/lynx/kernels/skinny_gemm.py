"""Skinny GEMM for decode: ``y[T, N] = x[T, K] @ W[N, K]^T (+ bias)`` with few rows (T <= 64).

At decode batch sizes the dense projections (qkv, o_proj, router, LM head) are GEMV-like
and memory-bound: every weight byte must stream from HBM exactly once, spread over enough
CTAs with enough loads in flight. cuBLAS picks compute-shaped tiles for them (and a
separate split-K reduce kernel); the Triton kernel here is shaped for bandwidth instead:

* program ``(n, s)`` owns ``BLOCK_N`` output columns for *all* ``T`` rows (``BLOCK_M =
  max(16, next_pow2(T))``) and the ``s``-th of ``split_k`` ranges of K, loops over its K
  range with ``num_stages`` software pipelining, and accumulates in fp32;
* ``split_k > 1`` (shapes with few N tiles: routers, o_proj): each program stores its fp32
  partial ``[T, BLOCK_N]`` and bumps a per-N-tile counter; the last program to arrive sums
  the ``split_k`` partials in the fixed order ``s = 0..split_k-1`` (deterministic), adds the
  bias, writes the output in its dtype and resets the counter to zero. One launch per
  call, no memset: the counters live in a per-device workspace zeroed once, and every
  call leaves them zero again.

Nothing in the launcher reads device values and all shapes depend only on ``(T, N, K)``
and the config, so a call can be captured in a CUDA graph. Caveat of the shared
counters: ``split_k > 1`` launches on one device must not run concurrently on two
streams (a decode step runs on one stream; graphs replay in order).

:func:`skinny_linear` dispatches: Triton kernel for supported CUDA inputs (or CPU tensors
under ``TRITON_INTERPRET=1``), ``F.linear`` for other CUDA inputs (e.g. prefill, T > 64),
:func:`skinny_linear_reference` on CPU. Triton is imported only when the kernel runs.

Status: off by default (``LYNX_DENSE_GEMM=skinny`` routes the engine's dense projections
here, :mod:`lynx.kernels.dense`). On the H200 the best of a 60-variant sweep ran at
0.74-1.09x of cuBLAS on the decode shapes (docs/performance.md section 7): both are bound
by per-kernel latency, not bandwidth, at these sizes; in the decode step it was 3-9% slower
than cuBLAS, and 5-10% slower with programmatic dependent launch and an L2 bulk prefetch of
each program's weight rows before its wait (``PREFETCH_BYTES``, section 9). It is kept
(tested) as the base for fusions that cuBLAS cannot do, e.g. an RMSNorm prologue or a
routing epilogue.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from lynx.kernels.triton_interpret import interpreter_enabled

SUPPORTED_DTYPES = (torch.bfloat16, torch.float16, torch.float32)
OUT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)
MAX_ROWS = 64  # T above this is a prefill-shaped GEMM: cuBLAS territory

# Default-config heuristic knobs (see default_config); the GPU sweep tunes these.
H200_SMS = 132
TARGET_CTAS_PER_SM = 2  # programs per SM the grid should reach (latency hiding across CTAs)
STAGE_WEIGHT_BYTES = 16 << 10  # weight bytes per pipeline stage (8-32 KiB is the sweet spot)
SMEM_BUDGET = 100 << 10  # pipelined smem per CTA so that two CTAs fit in an H200 SM (228 KiB)
WIDE_N_TILES_PER_SM = 8  # N tiles per SM above which block_n doubles (LM head: fewer, longer programs)
MAX_SPLIT_K = 16
MIN_BLOCK_K, MAX_BLOCK_K = 32, 512
COUNTER_SLOTS = 1 << 16  # int32 counters per device (256 KiB), shared by several kernels:
# [0, LOW_SLOTS) split-K tile counters and paged-attention row counters (counted from 0),
# then the cooperative routing plan's COOP_SLOTS, then the one-launch MoE's PERSISTENT_SLOTS
# at the top. Every kernel leaves its region zero; calls run on one stream.
PERSISTENT_SLOTS = 4096  # lynx.kernels.triton_moe_persistent_host
COOP_SLOTS = 1024  # lynx.kernels.routing_coop
LOW_SLOTS = COUNTER_SLOTS - PERSISTENT_SLOTS - COOP_SLOTS

_WARPS = (1, 2, 4, 8, 16)


def _pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _next_pow2(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class SkinnyGemmConfig:
    """Tiles and launch parameters of the skinny GEMM (``BLOCK_M`` follows from T)."""

    block_n: int = 32  # output columns per program
    block_k: int = 256  # reduction step (one pipeline stage loads [block_n, block_k] of W)
    split_k: int = 1  # programs per N tile, each a contiguous K range (capped at K / block_k)
    num_warps: int = 4
    num_stages: int = 3

    def __post_init__(self) -> None:
        for name in ("block_n", "block_k"):
            value = getattr(self, name)
            if not (_pow2(value) and 16 <= value <= 1024):  # tl.dot needs >= 16 per dim
                raise ValueError(f"{name} must be a power of two in [16, 1024], got {value}")
        if not 1 <= self.split_k <= 64:
            raise ValueError(f"split_k must be in [1, 64], got {self.split_k}")
        if self.num_warps not in _WARPS:
            raise ValueError(f"num_warps must be one of {_WARPS}, got {self.num_warps}")
        if not 1 <= self.num_stages <= 8:
            raise ValueError(f"num_stages must be in [1, 8], got {self.num_stages}")

    def with_(self, **changes: int) -> SkinnyGemmConfig:
        """Copy with some fields changed (for sweeps)."""
        return replace(self, **changes)

    def short(self) -> str:
        """Compact label, e.g. ``n32k256s1w4p3``."""
        return f"n{self.block_n}k{self.block_k}s{self.split_k}w{self.num_warps}p{self.num_stages}"


def block_m_for(rows: int) -> int:
    """Row tile covering all ``rows`` (tl.dot needs at least 16)."""
    return max(16, _next_pow2(rows))


@functools.lru_cache(maxsize=4096)  # called per launch when no config is given
def default_config(rows: int, n: int, k: int, dtype: torch.dtype, num_sms: int = H200_SMS) -> SkinnyGemmConfig:
    """Bandwidth-first tiles for ``[rows, k] @ [n, k]^T`` from shapes only.

    * ``block_n >= BLOCK_M`` (16/32/64): every program re-reads the ``[T, K-range]`` slice of
      x from L2, so x traffic / weight traffic is ``T / block_n``; keep it <= 1. Very wide N
      (LM head) doubles ``block_n`` up to 128 while there are still ``WIDE_N_TILES_PER_SM``
      tiles per SM: fewer, longer programs.
      Conversely, matrices too small to fill the GPU even at ``MAX_SPLIT_K`` (routers) halve
      ``block_n`` down to 16: more programs beat less x traffic there.
    * ``split_k``: enough K ranges that ``n_tiles * split_k`` reaches
      ``TARGET_CTAS_PER_SM * num_sms`` (capped at ``MAX_SPLIT_K``).
    * ``block_k``: about ``STAGE_WEIGHT_BYTES`` of weights per stage, but no longer than one
      K range (routers: many programs with one step each, 16-byte loads).
    * ``num_stages``: as many (2..4) as fit ``SMEM_BUDGET`` (two CTAs per SM).
    """
    elem = dtype.itemsize
    block_m = block_m_for(rows)
    block_n = max(16, block_m)
    while block_n < 128 and _cdiv(n, 2 * block_n) >= WIDE_N_TILES_PER_SM * num_sms:
        block_n *= 2
    block_n = min(block_n, max(16, _next_pow2(n)))  # no tile wider than N itself
    target = TARGET_CTAS_PER_SM * num_sms
    while block_n > 16 and _cdiv(n, block_n) * MAX_SPLIT_K < target:
        block_n //= 2  # tiny matrices (routers): more programs beat less x traffic
    n_tiles = _cdiv(n, block_n)
    split_k = max(1, min(MAX_SPLIT_K, _cdiv(target, n_tiles), k // MIN_BLOCK_K))
    block_k = min(MAX_BLOCK_K, STAGE_WEIGHT_BYTES // (block_n * elem), _next_pow2(_cdiv(k, split_k)))
    block_k = max(MIN_BLOCK_K, block_k)
    k_steps = _cdiv(k, block_k)
    split_k = _cdiv(k_steps, _cdiv(k_steps, min(split_k, k_steps)))  # as launched: no empty K range
    stage_bytes = (block_m + block_n) * block_k * elem
    num_stages = max(2, min(4, SMEM_BUDGET // stage_bytes))
    return SkinnyGemmConfig(block_n=block_n, block_k=block_k, split_k=split_k, num_warps=4, num_stages=num_stages)


@functools.lru_cache(maxsize=None)
def num_sms(device: torch.device) -> int:
    """SM count (cached host-side property query; safe during graph capture)."""
    if device.type != "cuda":
        return 4  # interpreter on CPU: only shapes the heuristic
    return torch.cuda.get_device_properties(device).multi_processor_count


def supports(x: torch.Tensor, weight: torch.Tensor) -> str | None:
    """Why the Triton kernel cannot compute ``x @ weight^T``, or None if it can.

    ``x`` is ``[..., K]`` (leading dims flattened to T rows), ``weight`` ``[N, K]``.
    """
    if x.device.type != "cuda" and not interpreter_enabled():
        return f"x is on {x.device.type}, not CUDA (and TRITON_INTERPRET is off)"
    if weight.device != x.device:
        return f"x on {x.device} but weight on {weight.device}"
    if x.dtype not in SUPPORTED_DTYPES:
        return f"dtype {x.dtype} is not one of bf16/fp16/fp32"
    if weight.dtype != x.dtype:
        return f"x is {x.dtype} but weight is {weight.dtype}"
    if weight.dim() != 2 or x.dim() < 1:
        return f"need weight [N, K] and x [..., K], got {tuple(weight.shape)} and {tuple(x.shape)}"
    if x.shape[-1] != weight.shape[1]:
        return f"K mismatch: x has {x.shape[-1]}, weight has {weight.shape[1]}"
    if weight.shape[0] == 0 or weight.shape[1] == 0:
        return f"empty weight {tuple(weight.shape)}"
    rows = x.numel() // x.shape[-1]
    if rows > MAX_ROWS:
        return f"T={rows} rows > {MAX_ROWS} (not decode-sized)"
    if x.stride(-1) != 1 or weight.stride(1) != 1:
        return f"K must have unit stride (x stride {x.stride(-1)}, weight stride {weight.stride(1)})"
    return None


def skinny_linear_reference(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Plain PyTorch ``x @ weight^T + bias`` with fp32 accumulation; the CPU path and the oracle."""
    acc = torch.promote_types(x.dtype, torch.float32)
    y = x.to(acc) @ weight.to(acc).t()  # [..., N]
    if bias is not None:
        y = y + bias.to(acc)
    return y.to(out_dtype or x.dtype)


def skinny_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, out_dtype: torch.dtype | None = None,
    config: SkinnyGemmConfig | None = None,
) -> torch.Tensor:
    """``x @ weight^T + bias`` for ``x [..., K]``, ``weight [N, K]`` (``nn.Linear`` layout).

    Returns ``[..., N]`` in ``out_dtype`` (default ``x.dtype``). Uses the Triton kernel when
    :func:`supports` allows it (and Triton imports), with ``config`` or
    :func:`default_config`; other CUDA inputs go to ``F.linear`` (which rounds to
    ``x.dtype`` before a wider ``out_dtype``); CPU inputs to :func:`skinny_linear_reference`.
    """
    if supports(x, weight) is None:
        from lynx.kernels.dispatch import triton_available

        if triton_available():
            return skinny_linear_triton(x, weight, bias, out_dtype, config)
    if x.is_cuda:
        return F.linear(x, weight, bias).to(out_dtype or x.dtype)
    return skinny_linear_reference(x, weight, bias, out_dtype)


_counters: dict[torch.device, torch.Tensor] = {}


def split_k_counters(device: torch.device) -> torch.Tensor | None:
    """The device's ``[COUNTER_SLOTS]`` int32 split-K counters (all zero between calls).

    Allocated (and zeroed) on first use. During CUDA-graph capture a zeroing memset could
    not run before other graphs' replays, so there it returns None when the workspace
    does not exist yet (run one call eagerly first, as graph warm-ups do).
    """
    buf = _counters.get(device)
    if buf is None:
        if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
            return None
        buf = _counters[device] = torch.zeros(COUNTER_SLOTS, dtype=torch.int32, device=device)
    return buf


def reduce_unroll(block_m: int, cfg: SkinnyGemmConfig) -> int:
    """Partial tiles the reducing program loads at once: ~64 fp32 registers per thread."""
    per_thread = max(1, block_m * cfg.block_n // (32 * cfg.num_warps))  # fp32 elements of one tile
    return max(1, min(MAX_SPLIT_K, 1 << (max(1, 64 // per_thread).bit_length() - 1)))


def _launch_params(rows: int, n: int, k: int, cfg: SkinnyGemmConfig) -> tuple[int, int, int]:
    """``(n_tiles, split_k, k_per_split)``: split_k shrunk so that no K range is empty."""
    n_tiles = _cdiv(n, cfg.block_n)
    k_steps = _cdiv(k, cfg.block_k)
    steps_per_split = _cdiv(k_steps, min(cfg.split_k, k_steps))
    split_k = _cdiv(k_steps, steps_per_split)
    if n_tiles > LOW_SLOTS:  # only happens for absurd N; split-K is pointless there anyway
        split_k, steps_per_split = 1, k_steps
    return n_tiles, split_k, steps_per_split * cfg.block_k


def skinny_linear_triton(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, out_dtype: torch.dtype | None = None,
    config: SkinnyGemmConfig | None = None,
) -> torch.Tensor:
    """The Triton launch behind :func:`skinny_linear` (raises ValueError if unsupported)."""
    reason = supports(x, weight)
    if reason is not None:
        raise ValueError(f"skinny_linear_triton: {reason}")
    out_dtype = out_dtype or x.dtype
    if out_dtype not in OUT_DTYPES:
        raise ValueError(f"out_dtype must be one of {OUT_DTYPES}, got {out_dtype}")
    n, k = weight.shape
    if bias is not None:
        if bias.shape != (n,):
            raise ValueError(f"bias must be [{n}], got {tuple(bias.shape)}")
        bias = bias.contiguous()
    lead = x.shape[:-1]
    x2 = x.reshape(-1, k)  # [T, K]; a view unless the leading dims cannot be merged
    rows = x2.shape[0]
    out = torch.empty((rows, n), dtype=out_dtype, device=x.device)  # [T, N]
    if rows == 0:
        return out.view(*lead, n)
    cfg = config or default_config(rows, n, k, x.dtype, num_sms(x.device))
    n_tiles, split_k, k_per_split = _launch_params(rows, n, k, cfg)
    block_m = block_m_for(rows)
    counters = split_k_counters(x.device) if split_k > 1 else None
    if split_k > 1 and counters is None:
        warnings.warn("skinny_linear: split-K workspace missing during graph capture; using split_k=1 "
                      "(call skinny_linear once before capturing)", RuntimeWarning, stacklevel=2)
        split_k, k_per_split = 1, _cdiv(k, cfg.block_k) * cfg.block_k
    # fp32 partials [split_k, T, N]: only written when split_k > 1 (a plain allocation, no launch)
    partials = torch.empty((split_k, rows, n), dtype=torch.float32, device=x.device) if split_k > 1 else out

    from lynx.kernels.pdl import pdl_launch
    from lynx.kernels.skinny_gemm_triton import skinny_gemm_kernel

    pdl = pdl_launch(x.device, "gemm")

    skinny_gemm_kernel[(n_tiles, split_k)](
        x2, weight, bias if bias is not None else out, out, partials, counters if counters is not None else out,
        rows, n, k, split_k, k_per_split,
        x2.stride(0), weight.stride(0), out.stride(0),
        HAS_BIAS=bias is not None, EVEN_K=k % cfg.block_k == 0,
        BLOCK_M=block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k,
        SPLIT=split_k > 1, REDUCE_UNROLL=reduce_unroll(block_m, cfg),
        # fp32 models must not silently drop to TF32 (the CPU-matching tests use fp32)
        DOT_PRECISION="ieee" if x.dtype == torch.float32 else "tf32",
        PREFETCH_BYTES=prefetch_bytes(weight) if pdl["PDL"] else 0,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages, **pdl,
    )
    return out.view(*lead, n)


def prefetch_bytes(weight: torch.Tensor) -> int:
    """W's element size if every program's K range of every row is a 16-byte aligned run
    of a multiple of 16 bytes (what ``cp.async.bulk.prefetch`` needs), else 0 (no prefetch)."""
    elem = weight.element_size()
    aligned = weight.data_ptr() % 16 == 0 and (weight.stride(0) * elem) % 16 == 0
    return elem if aligned and (weight.shape[1] * elem) % 16 == 0 else 0
