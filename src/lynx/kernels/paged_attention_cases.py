"""Random paged-KV decode cases and an independent float64 oracle (tests, GPU check script).

:func:`make_paged_case` scatters each sequence over shuffled, non-contiguous cache pages,
as a long-running engine's block manager leaves them. With ``poison=True`` every cache
slot that no row attends to -- the unused tail of a row's last page, keys before a
sliding window, pages no row owns -- and every padding column of the block table points
at NaN, so a kernel that reads (and uses) a single byte outside ``context_lens`` shows up
as NaN. The PyTorch reference multiplies masked values by zero (NaN * 0 = NaN), so it
must get ``clean`` caches (same values, zeros instead of NaN).
"""

from __future__ import annotations

import dataclasses
import math

import torch


@dataclasses.dataclass
class PagedCase:
    q: torch.Tensor  # [B, Hq, D]
    k_cache: torch.Tensor  # [num_blocks, bs, Hkv, D] (NaN-poisoned if requested)
    v_cache: torch.Tensor
    block_tables: torch.Tensor  # [B, M] int32; padding columns -> a poisoned page
    context_lens: torch.Tensor  # [B] int32
    clean_k: torch.Tensor  # the caches without poison (for the reference)
    clean_v: torch.Tensor
    window: int | None

    def args(self, clean: bool = False) -> tuple:
        """Positional arguments of the decode-attention functions (minus scale, window)."""
        k, v = (self.clean_k, self.clean_v) if clean else (self.k_cache, self.v_cache)
        return self.q, k, v, self.block_tables, self.context_lens


def make_paged_case(
    context_lens: list[int], num_heads: int, num_kv_heads: int, head_dim: int, block_size: int,
    width_blocks: int, *, window: int | None = None, dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu", poison: bool = False, seed: int = 0, spare_blocks: int = 3,
) -> PagedCase:
    """A decode batch with ``len(context_lens)`` rows and a ``width_blocks``-column table."""
    gen = torch.Generator(device).manual_seed(seed)
    need = [math.ceil(c / block_size) for c in context_lens]  # pages each row owns
    if max(need) > width_blocks:
        raise ValueError(f"context {max(context_lens)} does not fit {width_blocks} pages of {block_size}")
    num_blocks = sum(need) + spare_blocks + 1  # last page: the poisoned padding target
    pages = torch.randperm(num_blocks - 1, generator=gen, device=device).to(torch.int32)  # shuffled
    pad_page = num_blocks - 1
    tables = torch.full((len(context_lens), width_blocks), pad_page, dtype=torch.int32, device=device)
    shape = (num_blocks, block_size, num_kv_heads, head_dim)
    k = torch.randn(shape, generator=gen, device=device).to(dtype)
    v = torch.randn(shape, generator=gen, device=device).to(dtype)
    used = torch.zeros(num_blocks, block_size, dtype=torch.bool, device=device)  # attended slots
    start = 0
    for row, (ctx, n) in enumerate(zip(context_lens, need)):
        tables[row, :n] = pages[start:start + n]
        start += n
        pos = torch.arange(ctx, device=device)
        pos = pos[pos > ctx - 1 - window] if window is not None else pos  # keys this row attends
        used[tables[row, pos // block_size].long(), pos % block_size] = True
    q = torch.randn(len(context_lens), num_heads, head_dim, generator=gen, device=device).to(dtype)
    clean_k = k.masked_fill(~used[:, :, None, None], 0.0)
    clean_v = v.masked_fill(~used[:, :, None, None], 0.0)
    if poison:
        k = clean_k.masked_fill(~used[:, :, None, None], float("nan"))
        v = clean_v.masked_fill(~used[:, :, None, None], float("nan"))
    else:
        k, v = clean_k, clean_v
    lens = torch.tensor(context_lens, dtype=torch.int32, device=device)
    return PagedCase(q, k, v, tables, lens, clean_k, clean_v, window)


def decode_attention_oracle(case: PagedCase, scale: float) -> torch.Tensor:
    """Float64 per-sequence loop on contiguous K/V rebuilt from the block table ``[B, Hq, D]``."""
    q = case.q.double()
    b, hq, d = q.shape
    bs, hkv = case.clean_k.shape[1], case.clean_k.shape[2]
    group = hq // hkv
    out = torch.empty(b, hq, d, dtype=torch.float64, device=q.device)
    for row in range(b):
        ctx = int(case.context_lens[row])
        pos = torch.arange(ctx, device=q.device)
        pages = case.block_tables[row, pos // bs].long()
        k = case.clean_k[pages, pos % bs].double()  # [ctx, Hkv, D] contiguous
        v = case.clean_v[pages, pos % bs].double()
        if case.window is not None:  # keys with pos > last - window, last = ctx - 1
            keep = pos > ctx - 1 - case.window
            k, v = k[keep], v[keep]
        for head in range(hq):
            scores = (k[:, head // group] @ q[row, head]) * scale  # [L]
            out[row, head] = torch.softmax(scores, 0) @ v[:, head // group]  # [D]
    return out


def kv_bytes_needed(context_lens: list[int], num_kv_heads: int, head_dim: int, elem_bytes: int,
                    window: int | None = None) -> int:
    """K+V bytes a decode step must read: each row's attended tokens, for every KV head."""
    tokens = sum(min(c, window) if window else c for c in context_lens)
    return 2 * tokens * num_kv_heads * head_dim * elem_bytes


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """``|out - ref| / |ref|`` in float64 (Frobenius)."""
    return float((out.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-30))
