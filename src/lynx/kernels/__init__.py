"""Expert-computation kernels for MoE layers.

The model code calls :func:`fused_experts`; it dispatches to a Triton fused-MoE kernel or
``torch._grouped_mm`` on CUDA and to the exact PyTorch reference on CPU (see
:mod:`lynx.kernels.dispatch`). Nothing here imports Triton until a GPU backend runs.
"""

from lynx.kernels.dispatch import BACKENDS, fused_experts, resolve_backend, set_default_backend
from lynx.kernels.moe_reference import fused_experts_reference

__all__ = ["BACKENDS", "fused_experts", "fused_experts_reference", "resolve_backend", "set_default_backend"]
