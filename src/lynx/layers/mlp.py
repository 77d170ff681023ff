"""Dense gated MLP (SwiGLU): ``down(act(gate(x)) * up(x))``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lynx.kernels.dense import dense_linear

ACTIVATIONS = {"silu": F.silu, "swish": F.silu, "gelu": F.gelu}


def get_activation(name: str):  # noqa: ANN201 - returns a torch function
    try:
        return ACTIVATIONS[name]
    except KeyError:
        from lynx.errors import UnsupportedArchitectureError

        raise UnsupportedArchitectureError(
            f"hidden_act {name!r} is not supported (supported: {', '.join(ACTIVATIONS)})"
        ) from None


class GatedMLP(nn.Module):
    """Gate and up projections fused into one matmul (one weight read, one launch)."""

    def __init__(self, hidden: int, intermediate: int, act: str = "silu", bias: bool = False) -> None:
        super().__init__()
        self.intermediate = intermediate
        self.gate_up_proj = nn.Linear(hidden, 2 * intermediate, bias=bias)
        self.down_proj = nn.Linear(intermediate, hidden, bias=bias)
        self.act = get_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate_up = dense_linear(x, self.gate_up_proj.weight, self.gate_up_proj.bias, "mlp")  # [T, 2I]
        gate, up = gate_up.split(self.intermediate, dim=-1)  # [T, I] each
        return dense_linear(self.act(gate) * up, self.down_proj.weight, self.down_proj.bias, "mlp")  # [T, H]
