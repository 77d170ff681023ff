"""RMSNorm with an optional fused residual add: one kernel instead of about six.

``rms_norm(x, w, eps, residual)`` returns ``(w * norm(x + residual), x + residual)``
(the second output only when ``residual`` is given): the pre-norm transformer's
"add the block output to the residual stream, normalise for the next block" step.
The reference reproduces the Hugging Face arithmetic exactly (add in the activation
dtype, normalise in float32, cast, scale); the Triton kernel rounds the sum to the
activation dtype before normalising, so it matches to bf16 precision.
"""

from __future__ import annotations

import os

import torch


def rms_norm_reference(
    x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Plain PyTorch RMSNorm over the last dim; the CPU path and the kernels' oracle."""
    if residual is not None:
        x = x + residual
        residual = x
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x32.to(x.dtype), residual


def _use_triton(x: torch.Tensor) -> bool:
    if not x.is_cuda or os.environ.get("LYNX_NORM_BACKEND", "auto") == "torch":
        return False
    from lynx.kernels.dispatch import triton_available

    return triton_available()


def rms_norm(
    x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """RMSNorm over the last dimension of ``x [..., D]``, fused with ``x + residual``."""
    if not _use_triton(x):
        return rms_norm_reference(x, weight, eps, residual)
    from lynx.kernels.rmsnorm_triton import rms_norm_triton

    return rms_norm_triton(x, weight, eps, residual)
