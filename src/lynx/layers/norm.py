"""RMSNorm, computed in float32 like the reference implementations."""

from __future__ import annotations

import torch
from torch import nn

from lynx.kernels.rmsnorm import rms_norm


class RMSNorm(nn.Module):
    """``weight * x / sqrt(mean(x^2) + eps)`` over the last dimension.

    ``forward(x, residual)`` first adds ``residual`` (the pre-norm block's residual
    stream) and returns ``(normed, x + residual)``: one fused kernel on the GPU.
    """

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(
        self, x: torch.Tensor, residual: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        out, new_residual = rms_norm(x, self.weight, self.eps, residual)
        if residual is None:
            return out
        assert new_residual is not None
        return out, new_residual
