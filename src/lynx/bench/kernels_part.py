"""Shapes, constants and the per-part state of ``lynx bench kernels`` (see :mod:`lynx.bench.kernels`)."""

from __future__ import annotations

import argparse
from types import ModuleType
from typing import Any

from lynx.bench.gpu_check import RunContext

PARTS = {"check": 50, "stages": 35, "time": 55, "prefill": 25, "sweep": 35, "models": 10}  # budget shares
FULL = {  # name: (H, I, E, k) of the routed experts (the presets' shapes)
    "qwen3-30b-a3b": (2048, 768, 128, 8), "olmoe": (2048, 1024, 64, 8), "mixtral": (4096, 14336, 8, 2),
    "qwen2-57b": (3584, 2560, 64, 8)}
TINY = {"qwen3-30b-a3b": (64, 32, 16, 4), "olmoe": (64, 48, 8, 4), "mixtral": (128, 64, 4, 2),
        "qwen2-57b": (96, 64, 8, 4)}
TIME_BATCHES = (16, 64)  # default decode batches of the "time" part
MODELS_BATCHES = (1, 16)  # and of the "models" part
QWEN = "qwen3-30b-a3b"
PREFILL_T = (256, 512, 1024, 2048, 4096)


class KernelPart(RunContext):
    """State of one part run in a child process; every record is flushed to JSON at once.

    ``args`` carries ``dry_run``, ``device``, ``deadline``, ``result`` and ``start`` (when the
    part began, after the imports).
    """

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        super().__init__(args.deadline, args.result)
        self.args, self.torch = args, torch
        torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 reference must be real fp32
        self.dry = args.dry_run
        self.device = torch.device(args.device)
        self.shapes = TINY if self.dry else FULL
        # --batches / --models-batches; dry runs default to tiny batches
        given = getattr(args, "batches", None), getattr(args, "models_batches", None)
        self.time_batches = given[0] or ((4, 8) if self.dry else TIME_BATCHES)
        self.models_batches = given[1] or ((4,) if self.dry else MODELS_BATCHES)

    def experts(self, name: str, copies: int = 1, dtype: Any = None) -> list[tuple[Any, Any]]:
        """``copies`` random (w13, w2) sets of model ``name`` (scaled so outputs are O(1))."""
        torch = self.torch
        h, i, e, _ = self.shapes[name]
        dtype = dtype or torch.bfloat16
        gen = torch.Generator(self.device).manual_seed(1234)
        return [((torch.randn(e, 2 * i, h, device=self.device, generator=gen) / h**0.5).to(dtype),
                 (torch.randn(e, h, i, device=self.device, generator=gen) / i**0.5).to(dtype))
                for _ in range(copies)]


def rel_err(out: Any, ref: Any) -> float:
    """``|out - ref| / |ref|`` (Frobenius norms, in float64)."""
    return float((out.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-30))


def old_config(batch: int, h: int, i: int) -> Any:
    """The Triton pipeline as measured before (545f084): legacy align, sum kernel, 4 stages."""
    from lynx.kernels.moe_config import default_config

    return default_config(batch, h, i).with_(align="legacy", fuse_sum=False, stages1=4, stages2=4)


def kernels_module() -> ModuleType:
    """``lynx.kernels`` (imported by the part's setup before any part function runs)."""
    import lynx.kernels

    return lynx.kernels
