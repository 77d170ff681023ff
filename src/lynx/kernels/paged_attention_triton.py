"""Host side of the Triton paged decode attention: launch config, buffers, one launch (two without counters).

Every shape and grid here depends only on ``(B, Hq, Hkv, D, block-table width)`` and the
config, never on the values of ``context_lens``, and nothing syncs with the host, so a call
can be captured in a CUDA graph and replayed with new lengths and block tables.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import torch
import triton

from lynx.kernels.paged_attention_kernels import paged_decode_partition_kernel, paged_decode_reduce_kernel
from lynx.kernels.pdl import pdl_launch
from lynx.kernels.skinny_gemm import LOW_SLOTS, split_k_counters

SUPPORTED_DTYPES = (torch.bfloat16, torch.float16, torch.float32)
MAX_HEAD_DIM = 256
MAX_GROUP = 64  # query heads per KV head; [BLOCK_G, BLOCK_N] scores must fit in registers
NO_WINDOW = 1 << 30  # "window" larger than any context: every cached key attends
WORKSPACE_BYTES = 64 << 20  # cap on the fp32 partial outputs [B, Hq, num_parts, D]
LOG2E = 1.4426950408889634


@dataclasses.dataclass(frozen=True)
class PagedAttentionConfig:
    """Launch parameters. ``partition_size`` must be a multiple of ``block_n``."""

    partition_size: int = 256  # tokens per split-K program
    block_n: int = 64  # tokens per inner-loop step (one K and one V tile)
    num_warps: int = 4
    num_stages: int = 2
    fused_reduce: bool = True  # merge partitions in the last-arriving program (one launch)

    def with_(self, **changes: int | bool) -> PagedAttentionConfig:
        return dataclasses.replace(self, **changes)


@functools.lru_cache(maxsize=None)
def _num_sms(device: torch.device) -> int:
    """SM count (cached host-side query; safe during graph capture)."""
    if device.type != "cuda":
        return 4  # interpreter on CPU: only shapes the heuristic
    return torch.cuda.get_device_properties(device).multi_processor_count


def default_config(batch: int, num_heads: int, num_kv_heads: int, head_dim: int, width_tokens: int,
                   num_sms: int) -> PagedAttentionConfig:
    """Static choice from shapes only (the real context lengths are unknown at capture).

    From the H200 sweep at decode shapes (``lynx bench attention --parts decode``,
    docs/performance.md section 8): with the merge in the same launch, long partitions
    win once the (row, KV head) pairs alone fill the GPU -- 512 tokens, or 1024 for tables
    of 4096+ tokens while pairs < 4 x SMs (Qwen3-30B-A3B batch 64: 18.2 vs 20.5 µs at
    context 300, 72.7 vs 80.3 at 2000; OLMoE batch 16 at 2000: 70.7 vs 75.8) -- and few pairs
    want short ones so a short batch still spreads over the SMs (Qwen3-30B-A3B batch 16:
    128 at context 300, 256 at 2000). The partition count is capped so that the fp32
    partial outputs stay within ``WORKSPACE_BYTES`` (large buckets, max_model_len 32k).
    """
    pairs = batch * num_kv_heads
    long_table = width_tokens >= 4096
    if pairs >= 4 * num_sms:
        size = 512
    elif pairs >= num_sms:
        size = 1024 if long_table else 512
    elif pairs >= num_sms // 4:
        size = 256 if long_table else 128
    else:
        size = 128
    per_part = batch * num_heads * head_dim * 4  # bytes of partial output per partition
    max_parts = max(1, min(256, WORKSPACE_BYTES // max(per_part, 1)))
    size = max(size, triton.next_power_of_2(triton.cdiv(width_tokens, max_parts)))
    block_n = 32 if head_dim > 128 else 64  # keeps K/V tiles at <= 16 KB for bf16
    return PagedAttentionConfig(partition_size=size, block_n=min(block_n, size))


def unsupported_reason(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor) -> str | None:
    """Why the Triton kernel cannot take these tensors (None if it can)."""
    hq, d = q.shape[1], q.shape[2]
    hkv = k_cache.shape[2]
    if q.dtype not in SUPPORTED_DTYPES or k_cache.dtype != q.dtype or v_cache.dtype != q.dtype:
        return f"dtypes q={q.dtype} k={k_cache.dtype} v={v_cache.dtype} (need one of bf16/fp16/fp32)"
    if d > MAX_HEAD_DIM:
        return f"head_dim {d} > {MAX_HEAD_DIM}"
    if hq % hkv or hq // hkv > MAX_GROUP:
        return f"Hq={hq} is not a multiple of Hkv={hkv} up to {MAX_GROUP}x"
    if not (k_cache.is_contiguous() and v_cache.is_contiguous()) or k_cache.shape != v_cache.shape:
        return "K/V caches must be contiguous and of one shape"
    return None


@dataclasses.dataclass
class _Launch:
    """What both partition kernels share: config, partial buffers, output, counters."""

    cfg: PagedAttentionConfig
    num_parts: int
    block_tables: torch.Tensor
    context_lens: torch.Tensor
    part_max: torch.Tensor
    part_sum: torch.Tensor
    part_out: torch.Tensor
    out: torch.Tensor
    counters: torch.Tensor | None
    win: int
    group: int
    block_d: int
    block_g: int


def _prepare(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_tables: torch.Tensor,
             context_lens: torch.Tensor, window: int | None, config: PagedAttentionConfig | None) -> _Launch:
    reason = unsupported_reason(q, k_cache, v_cache)
    if reason is not None:
        raise ValueError(f"triton paged attention does not support {reason}")
    b, hq, d = q.shape
    _, page, hkv, _ = k_cache.shape
    width = block_tables.shape[1] * page  # max_model_len rounded up to whole pages
    cfg = config or default_config(b, hq, hkv, d, width, _num_sms(q.device))
    if cfg.partition_size % cfg.block_n:
        raise ValueError(f"partition_size {cfg.partition_size} is not a multiple of block_n {cfg.block_n}")
    num_parts = max(1, triton.cdiv(width, cfg.partition_size))
    # no-ops for the engine's int32 tensors; cast kernels are graph-safe otherwise
    block_tables = block_tables.to(torch.int32)
    if block_tables.stride(-1) != 1:
        block_tables = block_tables.contiguous()
    context_lens = context_lens.to(torch.int32).contiguous()
    f32 = dict(dtype=torch.float32, device=q.device)
    part_max = torch.empty(b, hq, num_parts, **f32)
    part_sum = torch.empty(b, hq, num_parts, **f32)
    part_out = torch.empty(b, hq, num_parts, d, **f32)
    out = torch.empty(b, hq, d, dtype=q.dtype, device=q.device)
    # One launch when a zeroed counter per (row, KV head) exists; the workspace is shared with
    # the skinny GEMM's split-K counters (every kernel leaves it zero; calls on one stream).
    counters = split_k_counters(q.device) if b and cfg.fused_reduce and b * hkv <= LOW_SLOTS else None
    if b and cfg.fused_reduce and counters is None and b * hkv <= LOW_SLOTS:
        warnings.warn("paged attention: counter workspace missing during graph capture; this graph merges "
                      "partitions in a second launch (run one call eagerly before capturing)", stacklevel=3)
    return _Launch(cfg, num_parts, block_tables, context_lens, part_max, part_sum, part_out, out, counters,
                   NO_WINDOW if window is None else int(window), hq // hkv,
                   max(16, triton.next_power_of_2(d)), max(16, triton.next_power_of_2(hq // hkv)))


def _reduce(run: _Launch, hkv: int, b: int, d: int) -> None:
    """The second launch of a call without counters: merge the partitions."""
    paged_decode_reduce_kernel[(hkv, b)](
        run.part_max, run.part_sum, run.part_out, run.out, run.context_lens, run.win, run.num_parts,
        run.out.stride(0), run.out.stride(1),
        HEAD_DIM=d, BLOCK_D=run.block_d, GROUP=run.group, BLOCK_G=run.block_g, PARTITION=run.cfg.partition_size,
        num_warps=4 if run.block_g * run.block_d >= 2048 else 2, **pdl_launch(run.out.device, "attention"),
    )


def paged_decode_attention_triton(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    context_lens: torch.Tensor,
    scale: float,
    window: int | None,
    config: PagedAttentionConfig | None = None,
) -> torch.Tensor:
    """Triton backend of :func:`lynx.kernels.paged_attention.paged_decode_attention`."""
    run = _prepare(q, k_cache, v_cache, block_tables, context_lens, window, config)
    b, _, d = q.shape
    _, page, hkv, _ = k_cache.shape
    if b == 0:
        return run.out
    if q.stride(-1) != 1:
        q = q.contiguous()
    fused, cfg = run.counters is not None, run.cfg
    paged_decode_partition_kernel[(run.num_parts, hkv, b)](
        q, k_cache, v_cache, run.block_tables, run.context_lens, run.part_max, run.part_sum, run.part_out, run.out,
        run.counters if fused else run.context_lens, scale * LOG2E, run.win, run.num_parts,
        q.stride(0), q.stride(1), run.block_tables.stride(0), k_cache.stride(0), k_cache.stride(1),
        run.out.stride(0), run.out.stride(1),
        HEAD_DIM=d, BLOCK_D=run.block_d, GROUP=run.group, BLOCK_G=run.block_g,
        BLOCK_SIZE=page, PARTITION=cfg.partition_size, BLOCK_N=cfg.block_n,
        # fp32 models must not silently drop to TF32 (the CPU-matching checks use fp32)
        DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32", FUSED=fused,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages, **pdl_launch(q.device, "attention"),
    )
    if not fused:
        _reduce(run, hkv, b, d)
    return run.out
