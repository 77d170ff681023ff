"""The memory floor of a decode step: bytes that must be read, over measured bandwidth.

A decode step reads every non-expert weight once (attention, norms, routers, dense and
shared MLPs, the LM head), each *active* expert's weights once per MoE layer, and the KV
cache of every sequence. Divided by the HBM bandwidth measured in the same run, that is
the fastest a step can be; a step time over this floor is the engine's overhead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # annotations only: importing the model code here would pull it into the
    # engine-free GPU scripts (scripts/gpu_linear_check.py uses measure_hbm_bandwidth)
    from lynx.models.config import ModelConfig


@dataclass(frozen=True, slots=True)
class StepBytes:
    dense_weights: float  # bytes of weights every step reads, experts excluded
    experts: float  # bytes of the active experts' weights
    kv_cache: float  # bytes of K/V read by attention

    @property
    def total(self) -> float:
        return self.dense_weights + self.experts + self.kv_cache


def step_bytes(cfg: ModelConfig, elem_bytes: int, active_experts_per_layer: list[float] | float,
               context_lens: list[int]) -> StepBytes:
    """Bytes one decode step must read for a batch with these context lengths."""
    h, d = cfg.hidden_size, cfg.head_dim
    attn = h * d * (cfg.num_heads + 2 * cfg.num_kv_heads) + cfg.num_heads * d * h
    dense = cfg.vocab_size * h  # LM head (embedding rows read are negligible)
    expert_params = 0.0
    moe_layers = [i for i, m in enumerate(cfg.moe_layers) if m and cfg.moe is not None]
    if isinstance(active_experts_per_layer, (int, float)):
        active_experts_per_layer = [float(active_experts_per_layer)] * len(moe_layers)
    moe_iter = iter(active_experts_per_layer)
    for is_moe in cfg.moe_layers:
        dense += attn + 2 * h
        if is_moe and cfg.moe is not None:
            dense += h * cfg.moe.num_experts + 3 * h * cfg.moe.shared_expert_intermediate_size
            expert_params += next(moe_iter) * 3 * h * cfg.moe.intermediate_size
        else:
            dense += 3 * h * cfg.intermediate_size
    kv = 2 * cfg.num_layers * cfg.num_kv_heads * d * sum(context_lens)
    return StepBytes(dense * elem_bytes, expert_params * elem_bytes, kv * elem_bytes)


def measure_hbm_bandwidth(device: torch.device, gib: float = 4.0, iters: int = 20) -> float:
    """Read bandwidth in bytes/s: median time of summing a ``gib`` GiB bf16 tensor."""
    n = int(gib * (1 << 30) // 2)
    x = torch.randn(n, device=device, dtype=torch.bfloat16)
    times = []
    for i in range(iters + 3):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        x.sum(dtype=torch.float32)
        end.record()
        torch.cuda.synchronize(device)
        if i >= 3:
            times.append(start.elapsed_time(end) / 1e3)
    del x
    times.sort()
    return (n * 2) / times[len(times) // 2]
