"""The cooperative routing plan's real one-launch kernel (``PHASE=0``, grid barriers) on a GPU.

On CPU the interpreter runs the plan's phases as separate launches (test_routing_kernels.py),
so the barriers' targets, the spin and the last program's reset of the workspace only run
here: many back-to-back calls, eager and replayed in a CUDA graph, at row counts that give
one and two rows per program (the SM count and one more), with padding rows and changing
expert counts, each compared with the PyTorch path and followed by a check that the
workspace is zero again. Skipped without CUDA (CI); run on the GPU machine with
``python -m pytest -q tests/kernels/test_routing_coop_gpu.py``.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

from lynx.routing import select_experts
from lynx.routing.config import resolve_params

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("triton") is None,
    reason="needs a CUDA GPU and Triton (the cooperative kernel's barriers only run there)",
)


def _torch_path(logits: torch.Tensor, k: int, policy: str, valid: torch.Tensor, params: dict) -> tuple:
    os.environ["LYNX_ROUTING_BACKEND"] = "torch"
    try:
        return select_experts(logits, k, policy, "softmax", True, valid, **params)
    finally:
        os.environ.pop("LYNX_ROUTING_BACKEND")


def _inputs(seed: int, t: int, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pop, topics = torch.randn(n, generator=g) * 0.5, torch.randn(4, n, generator=g) * 1.5
    z = pop + topics[torch.randint(0, 4, (t,), generator=g)] + torch.randn(t, n, generator=g)
    valid = torch.arange(t) < t - 1 - seed % 3  # a CUDA-graph bucket: real rows first
    return z.to(torch.bfloat16).to(device), valid.to(device)


def _check(got: tuple, want: tuple) -> None:
    assert torch.equal(got[1], want[1])
    torch.testing.assert_close(got[0], want[0], rtol=2e-6, atol=1e-30)


def test_cooperative_kernel_eager_back_to_back() -> None:
    from lynx.kernels.routing_coop import coop_workspace, max_coop_programs
    from lynx.kernels.routing_plans import DEFAULT_CONFIG, routing_plan
    from lynx.kernels.routing_triton import select_experts_triton

    dev = torch.device("cuda")
    sms = max_coop_programs(dev)
    cases = [(t, n, k, policy, params)
             for t in (8, 16, 64, sms, sms + 1, 200)
             for n, k in ((128, 8), (64, 6), (160, 6))
             for policy, params in (("lynx", {}), ("lynx", {"alpha": 3.0, "beta": 4}), ("oea", {"k0": 3}))]
    local = DEFAULT_CONFIG.with_(coop_local_sums_max_rows=1024)  # LYNX's s' per program, one barrier
    for i, (t, n, k, policy, params) in enumerate(cases):
        assert routing_plan(t, n, policy, DEFAULT_CONFIG, dev) == "coop"
        p = resolve_params(policy, params, n, k)
        outs, wants = [], []
        for rep in range(4):  # back to back, no host sync in between
            z, valid = _inputs(1000 * i + rep, t, n, dev)
            cfg = local if rep % 2 else DEFAULT_CONFIG
            outs.append(select_experts_triton(z, k, policy, "softmax", True, valid, p, cfg))
            wants.append(_torch_path(z, k, policy, valid, params))
        torch.cuda.synchronize()
        for got, want in zip(outs, wants):
            _check(got, want)
        assert not coop_workspace(dev).any(), (t, n, policy)


def test_cooperative_kernel_in_cuda_graph_replays() -> None:
    from lynx.kernels.routing_coop import coop_workspace, max_coop_programs
    from lynx.kernels.routing_plans import DEFAULT_CONFIG
    from lynx.kernels.routing_triton import select_experts_triton

    dev = torch.device("cuda")
    sms = max_coop_programs(dev)
    for t, policy in ((64, "lynx"), (sms + 1, "lynx"), (64, "oea")):
        n, k = 128, 8
        p = resolve_params(policy, {}, n, k)
        z, valid = _inputs(t, t, n, dev)
        static = z.clone()
        select_experts_triton(static, k, policy, "softmax", True, valid, p, DEFAULT_CONFIG)  # compile, workspace
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):  # 48 calls in one graph, as one decode step's MoE layers
            outs = [select_experts_triton(static, k, policy, "softmax", True, valid, p, DEFAULT_CONFIG)
                    for _ in range(48)]
        for seed in range(5):
            static.copy_(_inputs(100 + seed, t, n, dev)[0])
            graph.replay()
            want = _torch_path(static, k, policy, valid, {})
            torch.cuda.synchronize()
            for got in (outs[0], outs[-1]):
                _check(got, want)
            assert not coop_workspace(dev).any()
