"""Which implementation of :func:`lynx.routing.select_experts` serves a call: torch or Triton.

``auto`` (the default): the Triton kernels for CUDA tensors when Triton imports and the
shape is supported, the PyTorch implementation otherwise (CPU, meta, unsupported shapes).
``LYNX_ROUTING_BACKEND=torch|triton`` forces one; forcing ``triton`` on an unsupported
call raises instead of silently running torch (on CPU it works under ``TRITON_INTERPRET=1``,
which is how the tests run the kernels). The variable is read at every call, so tests and
benchmarks can flip it. Nothing here imports Triton; only Python values are inspected.
"""

from __future__ import annotations

import importlib.util
import math
import os
import struct

import torch

from lynx.routing.lynx import packed_key_fits

ROUTING_BACKENDS = ("auto", "torch", "triton")
ENV_VAR = "LYNX_ROUTING_BACKEND"

MAX_EXPERTS = 256  # 8-bit expert index in the kernels' packed keys
MAX_BETA = 16  # LYNX votes are unrolled beta times
MAX_ROWS = 1 << 16  # int32 row arithmetic with margin
# LYNX/OEA recompute batch-wide quantities per row block (O(T^2 N) in total): beyond
# this many rows "auto" keeps the PyTorch path (decode batches are far smaller).
AUTO_MAX_POLICY_ROWS = 1024
_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)


def _triton_importable() -> bool:
    return importlib.util.find_spec("triton") is not None


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def triton_unsupported_reason(
    logits: torch.Tensor, top_k: int, policy: str, params: dict
) -> str | None:
    """Why the Triton kernels cannot serve this call, or ``None`` if they can."""
    t, n = logits.shape
    if not _triton_importable():
        return "triton is not installed"
    if not (logits.is_cuda or (logits.device.type == "cpu" and _interpreting())):
        return f"device {logits.device.type} (Triton needs CUDA, or TRITON_INTERPRET=1 on CPU)"
    if logits.dtype not in _DTYPES:
        return f"logits dtype {logits.dtype}"
    if n > MAX_EXPERTS or t > MAX_ROWS or t < 1:
        return f"shape T={t}, N={n} (need 1 <= T <= {MAX_ROWS}, N <= {MAX_EXPERTS})"
    if policy == "lynx":
        beta, alpha = int(params["beta"]), float(params["alpha"])
        if beta > MAX_BETA or not packed_key_fits(t, beta):
            return f"LYNX beta={beta} at T={t}: the int64 preference key could overflow"
        bits = struct.unpack("<q", struct.pack("<d", alpha))[0]
        if not math.isfinite(alpha) or bits < 2**31:  # passed to Triton as an int64
            return f"LYNX alpha={alpha!r}"
    return None


def routing_backend(logits: torch.Tensor, top_k: int, policy: str, params: dict) -> str:
    """``"torch"`` or ``"triton"`` for this call (see the module docstring)."""
    choice = os.environ.get(ENV_VAR, "auto") or "auto"
    if choice not in ROUTING_BACKENDS:
        raise ValueError(f"{ENV_VAR}={choice!r}; expected one of {', '.join(ROUTING_BACKENDS)}")
    if choice == "torch":
        return "torch"
    reason = triton_unsupported_reason(logits, top_k, policy, params)
    if choice == "triton":
        if reason is not None:
            raise RuntimeError(f"{ENV_VAR}=triton but the Triton routing kernels cannot run: {reason}")
        return "triton"
    if reason is not None or not logits.is_cuda:
        return "torch"
    if policy != "topk" and logits.shape[0] > AUTO_MAX_POLICY_ROWS:
        return "torch"
    return "triton"
