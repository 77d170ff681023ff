"""Triton RMSNorm (+ residual add): one program per row, the whole row in registers."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from lynx.kernels.pdl import pdl_launch
from lynx.kernels.pdl_triton import pdl_enter


@triton.jit
def _rms_norm_kernel(
    x_ptr, res_ptr, w_ptr, out_ptr, res_out_ptr,
    x_stride, res_stride, out_stride, res_out_stride,
    D, eps,
    HAS_RESIDUAL: tl.constexpr, BLOCK: tl.constexpr,
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    pdl_enter(PDL)  # before any read of what earlier kernels write
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < D
    x = tl.load(x_ptr + row * x_stride + cols, mask=mask, other=0.0)
    if HAS_RESIDUAL:
        r = tl.load(res_ptr + row * res_stride + cols, mask=mask, other=0.0)
        # Round the sum to the activation dtype first, as the unfused model does.
        x = (x.to(tl.float32) + r.to(tl.float32)).to(x.dtype)
        tl.store(res_out_ptr + row * res_out_stride + cols, x, mask=mask)
    x32 = x.to(tl.float32)
    var = tl.sum(x32 * x32, axis=0) / D
    y = (x32 * tl.rsqrt(var + eps)).to(x.dtype)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0)
    tl.store(out_ptr + row * out_stride + cols, (w.to(tl.float32) * y.to(tl.float32)).to(x.dtype), mask=mask)


def rms_norm_triton(
    x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Same contract as :func:`lynx.kernels.rmsnorm.rms_norm` for CUDA tensors."""
    shape = x.shape
    d = shape[-1]
    x2 = x.reshape(-1, d)  # [R, D]
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    rows = x2.shape[0]
    out = torch.empty((rows, d), dtype=x.dtype, device=x.device)
    res2 = res_out = None
    if residual is not None:
        res2 = residual.reshape(-1, d)  # [R, D]
        if res2.stride(-1) != 1:
            res2 = res2.contiguous()
        res_out = torch.empty_like(out)
    block = triton.next_power_of_2(d)
    warps = 1 if block <= 256 else 4 if block <= 2048 else 8
    if rows:
        _rms_norm_kernel[(rows,)](
            x2, res2 if res2 is not None else x2, weight, out, res_out if res_out is not None else out,
            x2.stride(0), res2.stride(0) if res2 is not None else 0, out.stride(0),
            res_out.stride(0) if res_out is not None else 0,
            d, eps, HAS_RESIDUAL=residual is not None, BLOCK=block, num_warps=warps, **pdl_launch(x.device, "norm"),
        )
    return out.view(shape), (res_out.view(shape) if res_out is not None else None)
