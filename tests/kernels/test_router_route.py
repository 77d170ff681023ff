"""Fused router GEMM + routing (:mod:`lynx.kernels.router_route`) vs F.linear and select_experts.

* plain process: reasons that need no Triton, and the kernel compiled for sm_90 without a
  GPU (acquire-release counters, partials and logits never read through the non-coherent
  path, no spills);
* Triton's CPU interpreter (``test_interp_*``, rerun in a subprocess with
  ``TRITON_INTERPRET=1``, which must be set before the kernels are defined): ids identical
  and weights within 2e-6 relative of ``select_experts`` (torch backend) on the logits the
  kernel returned, the logits against F.linear, the tally, counters back to zero after
  every call, the reasons, and SparseMoE's output against its two-step path.

The interpreter's fp32 -> bf16 cast truncates; the GPU (and cuBLAS) round to nearest even.
The subprocess installs a rounding cast (:func:`_round_bf16_casts`), so the bf16 bound
below is half an ulp, as on the GPU.
"""

from __future__ import annotations

import importlib.util
import os
import random
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from lynx.routing import select_experts
from lynx.routing.config import resolve_params
from lynx.routing.tally import ExpertTally
from lynx.testing.interpreter import assert_interpreted_cases_pass

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
HAS_TRITON = importlib.util.find_spec("triton") is not None
interp_only = pytest.mark.skipif(not INTERPRET, reason="runs in the interpreter subprocess")
outer_only = pytest.mark.skipif(INTERPRET, reason="kernels are interpreted in this process")
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed (optional)")


def _round_bf16_casts() -> None:
    """Interpreter: fp32 -> bf16 casts round to nearest even (torch's), as compiled code does."""
    import numpy as np
    import triton.language as tl
    from triton.runtime.interpreter import InterpreterBuilder, TensorHandle

    original = InterpreterBuilder.cast_impl

    def cast_impl(self: object, src: TensorHandle, dst_type: object) -> TensorHandle:
        if src.dtype.scalar == tl.float32 and dst_type.scalar == tl.bfloat16:
            bits = torch.from_numpy(np.ascontiguousarray(src.data, np.float32)).to(torch.bfloat16)
            return TensorHandle(bits.view(torch.int16).numpy().view(np.uint16), tl.bfloat16)
        return original(self, src, dst_type)

    InterpreterBuilder.cast_impl = cast_impl


if INTERPRET and HAS_TRITON:
    from lynx.kernels.triton_interpret import patch_interpreter

    patch_interpreter()
    _round_bf16_casts()


# ----------------------------------------------------------------------------- plain process
@outer_only
def test_reasons_without_triton_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    from lynx.kernels.router_route import fused_router_reason

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    x, w = torch.randn(4, 32), torch.randn(16, 32)
    assert "CUDA" in fused_router_reason(x, w, 2, "topk", {})
    assert "[T, H]" in fused_router_reason(x.view(2, 2, 32), w, 2, "topk", {})


@outer_only
@needs_triton
def test_kernel_compiles_for_sm90() -> None:
    """Launches as the launcher specialises them (16-byte aligned pointers and strides): Qwen3-30B-A3B's
    router (H 2048, N 128, k 8) with split K, and a ragged fp32 shape with one K range."""
    from triton import compile as triton_compile
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from lynx.kernels import routing_kernels as rk
    from lynx.kernels import skinny_gemm as sg
    from lynx.kernels.router_route import launch_meta
    from lynx.kernels.router_route_kernel import router_route_kernel
    from lynx.kernels.routing_plans import DEFAULT_CONFIG

    sys.path.insert(0, str(Path(__file__).parent))
    from test_skinny_gemm import no_spills

    builds = [  # (T, N, H, dtype, policy, tally, gemm config or None = default for the H200)
        (16, 128, 2048, "bf16", "lynx", rk.TALLY_LOGITS, None),
        (64, 128, 2048, "bf16", "topk", rk.TALLY_MARKS, None),
        (16, 100, 200, "fp32", "oea", rk.TALLY_NONE, sg.SkinnyGemmConfig(block_n=32, block_k=64, split_k=1)),
    ]
    for t, n, h, dtype, policy, tally, cfg in builds:
        torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
        cfg = cfg or sg.default_config(t, n, h, torch_dtype, 132)
        params = resolve_params(policy, {}, n, 8)
        grid, _, meta = launch_meta(t, n, h, torch_dtype, 8, policy, "softmax", True, True, tally, params, cfg,
                                    DEFAULT_CONFIG)
        options = {"num_warps": meta.pop("num_warps"), "num_stages": meta.pop("num_stages")}
        ptrs = dict(zip("x w logits part counter valid weights ids hits kept".split(),
                        [dtype, dtype, dtype, "fp32", "i32", "u8", "fp32", "i64", "i32", "fp32"]))
        sig = {f"{name}_ptr": f"*{ty}" for name, ty in ptrs.items()}
        sig.update(dict.fromkeys("T H num_splits k_per_split stride_xm stride_wn".split(), "i32"))
        sig["alpha_bits"] = "i64" if policy == "lynx" else "i32"
        sig.update(dict.fromkeys(meta, "constexpr"))
        aligned = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(sig)
                   if name.endswith("_ptr") or (name in ("H", "k_per_split", "stride_xm", "stride_wn") and h % 16 == 0)}
        src = ASTSource(fn=router_route_kernel, signature=sig, constexprs=meta, attrs=aligned)
        ptx = triton_compile(src, target=GPUTarget("cuda", 90, 32), options=options).asm["ptx"]
        split = grid[1] > 1
        assert ptx.count("atom.global.gpu.acq_rel.add") == 1 + split, "tile (split K) and global arrivals"
        assert ("ld.global.cg" in ptx) == split, "partials must be read from L2"
        assert not re.search(r"ld\.global\.nc", ptx), "data written by this launch read through the nc path"
        assert no_spills(ptx), f"register spills at T={t}"
        if dtype == "bf16":
            assert re.search(r"ld\.global\.v[24]\.b32", ptx), "logits rows are not loaded as vectors"
            assert "cp.async.cg.shared.global" in ptx, "weight loads are not pipelined"


@outer_only
@needs_triton
def test_tally_launch_args_checks_buffers_and_fills_placeholders() -> None:
    """The TALLY mode and buffers both launchers pass (shared code), and what they reject."""
    from lynx.kernels import routing_kernels as rk
    from lynx.kernels.routing_triton import tally_launch_args

    t, n, k = 3, 16, 2
    weights, ids = torch.empty(t, k), torch.empty(t, k, dtype=torch.int64)
    mode, hits, kept = tally_launch_args(None, t, n, weights, ids)
    assert mode == rk.TALLY_NONE and hits is ids and kept is weights
    marks = ExpertTally(1, n, k, torch.device("cpu")).layer(0)
    mode, hits, kept = tally_launch_args(marks, t, n, weights, ids)
    assert mode == rk.TALLY_MARKS and hits is marks.hits and kept is weights
    logits = ExpertTally(1, n, k, torch.device("cpu"), max_tokens=t).layer(0)
    mode, hits, kept = tally_launch_args(logits, t, n, weights, ids)
    assert mode == rk.TALLY_LOGITS and hits is logits.hits and kept is logits.logits
    hits_ok = torch.zeros(2, n, dtype=torch.int32)
    for bad_hits in (torch.zeros(2, n + 1, dtype=torch.int32), torch.zeros(2, n, dtype=torch.int64),
                     torch.zeros(n, 2, dtype=torch.int32).t()):
        with pytest.raises(ValueError, match=rf"tally.hits must be a contiguous int32 \[2, {n}\]"):
            tally_launch_args(SimpleNamespace(hits=bad_hits, logits=None), t, n, weights, ids)
    for bad_kept in (torch.zeros(t - 1, n), torch.zeros(t, n + 1), torch.zeros(t, n, dtype=torch.float64),
                     torch.zeros(n, t).t()):
        with pytest.raises(ValueError, match=rf"tally.logits must be a contiguous float32 \[>= {t}, {n}\]"):
            tally_launch_args(SimpleNamespace(hits=hits_ok, logits=bad_kept), t, n, weights, ids)


class _Recorder:
    """Stands in for a Triton kernel: ``kernel[grid](*args, **kwargs)`` appends ``(args, kwargs)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple, dict]] = []

    def __getitem__(self, grid: tuple) -> object:
        return lambda *args, **kwargs: self.calls.append((args, kwargs))


@outer_only
@needs_triton
@pytest.mark.parametrize("policy, t, dtype, tally", [("topk", 5, torch.bfloat16, "marks"),
                                                     ("lynx", 16, torch.bfloat16, "logits"),
                                                     ("oea", 3, torch.float32, "none")])
def test_fused_router_routes_with_select_experts_constexprs(policy: str, t: int, dtype: torch.dtype, tally: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The fused kernel gets the routing constexprs and tally buffers route_kernel gets from
    select_experts_triton (its single-program plan for LYNX/OEA; plain top-k's row blocks differ in BT)."""
    import lynx.kernels.router_route_kernel as rrk
    from lynx.kernels import routing_kernels as rk
    from lynx.kernels import skinny_gemm as sg
    from lynx.kernels.router_route import router_select_triton
    from lynx.kernels.routing_plans import DEFAULT_CONFIG
    from lynx.kernels.routing_triton import select_experts_triton

    route, fused = _Recorder(), _Recorder()
    monkeypatch.setattr(rk, "route_kernel", route)
    monkeypatch.setattr(rk, "active_kernel", _Recorder())
    monkeypatch.setattr(rrk, "router_route_kernel", fused)
    monkeypatch.setattr(sg, "_counters", {})  # the CPU workspace stays out of this process's cache
    n, k, h = 128, 8, 256
    params = resolve_params(policy, {}, n, k)
    valid = torch.arange(t) % 3 != 1
    lay = _tally(tally, n, k, t)
    lay = lay and lay.layer(0)
    x, w = torch.randn(t, h).to(dtype), torch.randn(n, h).to(dtype)
    single = DEFAULT_CONFIG.with_(coop_min_rows=0)  # the plans of the fused router's last program
    select_experts_triton(torch.randn(t, n).to(dtype), k, policy, "softmax", True, valid, params, single, tally=lay)
    router_select_triton(x, w, k, policy, "softmax", True, valid, params, lay, reason_checked=True)
    (route_args, route_meta), = route.calls
    (fused_args, fused_meta), = fused.calls
    skip = {"num_warps", "PDL", "launch_pdl"} | ({"BT"} if policy == "topk" else set())  # PDL: route_kernel only
    assert {key: v for key, v in route_meta.items() if key not in skip} == \
        {key: fused_meta[key] for key in route_meta if key not in skip}
    hits, kept = fused_args[8:10]  # the tally buffers, or the call's weights and ids in their place
    assert [a.data_ptr() for a in (hits, kept)] == [
        lay.hits.data_ptr() if lay else fused_args[7].data_ptr(),
        lay.logits.data_ptr() if lay and lay.logits is not None else fused_args[6].data_ptr()]
    assert [(a.shape, a.dtype) for a in route_args[5:7]] == [(a.shape, a.dtype) for a in (hits, kept)]


@outer_only
@needs_triton
def test_kernels_in_interpreter() -> None:
    assert_interpreted_cases_pass(__file__, "test_interp_")


# ----------------------------------------------------------------------------- interpreter
BF16, FP32 = torch.bfloat16, torch.float32
EDGE_CASES = [  # (T, N, k, H, dtype, policy, scoring, renormalize, valid mode, tally mode, gemm config)
    (1, 128, 8, 256, BF16, "lynx", "softmax", True, "all", "logits", None),
    (1, 64, 2, 96, FP32, "topk", "sigmoid", False, "all", "none", None),
    (3, 160, 8, 200, BF16, "oea", "softmax", False, "tail", "marks", None),  # ragged K
    (16, 128, 8, 256, BF16, "lynx", "softmax", True, "random", "logits", None),  # Qwen3-30B-A3B
    (16, 64, 8, 128, BF16, "oea", "sigmoid", True, "first", "marks", (16, 32, 1)),  # one split: no tile counters
    (16, 160, 2, 96, FP32, "lynx", "sigmoid", False, "tail", "none", (32, 16, 3)),
    (33, 128, 8, 256, BF16, "topk", "softmax", True, "tail", "marks", None),
    (33, 160, 2, 160, FP32, "topk", "softmax", False, "random", "logits", (16, 64, 2)),
    (64, 64, 8, 128, BF16, "topk", "softmax", True, "random", "logits", None),  # OLMoE
    (64, 128, 2, 96, FP32, "topk", "sigmoid", True, "none", "marks", None),
    (64, 160, 8, 64, BF16, "topk", "sigmoid", False, "all", "none", (64, 32, 2)),
]


def _random_cases(count: int, seed: int = 7) -> list[tuple]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        t = rng.choice([1, 3, 16, 33, 64])
        policy = rng.choice(["topk", "lynx", "oea"]) if t <= 16 else "topk"
        n, k, h = rng.choice([64, 128, 160]), rng.choice([2, 8]), rng.choice([64, 96, 256])
        out.append((t, n, k, h, rng.choice([BF16, FP32]), policy, rng.choice(["softmax", "sigmoid"]),
                    rng.random() < 0.5, rng.choice(["all", "random", "tail", "first"]),
                    rng.choice(["none", "marks", "logits"]), None))
    return out


CASES = EDGE_CASES + _random_cases(13)


def _inputs(t: int, n: int, h: int, dtype: torch.dtype, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(t, h, generator=g).to(dtype)
    pop = torch.randn(n, 1, generator=g)  # skewed rows of W: some experts popular, as trained routers are
    w = ((torch.randn(n, h, generator=g) + 0.3 * pop) * (2.5 / h**0.5)).to(dtype)  # logits with std ~3
    return x, w


def _valid(t: int, mode: str, seed: int) -> torch.Tensor | None:
    if mode == "all":
        return None
    g = torch.Generator().manual_seed(seed)
    valid = torch.rand(t, generator=g) < 0.7 if mode == "random" else torch.ones(t, dtype=torch.bool)
    if mode == "tail" and t > 1:  # a CUDA-graph bucket: padding rows at the end
        valid[t - max(1, t // 4):] = False
    elif mode == "first":  # the first valid row is not row 0
        valid[: max(1, t // 3)] = False
    elif mode == "none":
        valid[:] = False
    return valid


def _tally(mode: str, n: int, k: int, t: int) -> ExpertTally | None:
    if mode == "none":
        return None
    return ExpertTally(1, n, k, torch.device("cpu"), max_tokens=t + 3 if mode == "logits" else 0)


def _counters_zero() -> bool:
    from lynx.kernels import skinny_gemm as sg

    return not sg._counters[torch.device("cpu")].any()


@interp_only
@pytest.mark.parametrize("case", CASES, ids=[f"c{i}" for i in range(len(CASES))])
def test_interp_equals_select_experts_on_its_logits(case: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    from lynx.kernels.router_route import router_select_triton
    from lynx.kernels.routing_plans import DEFAULT_CONFIG
    from lynx.kernels.skinny_gemm import SkinnyGemmConfig

    t, n, k, h, dtype, policy, scoring, renorm, valid_mode, tally_mode, tiles = case
    seed = t * 7919 + n * 31 + k + h
    x, w = _inputs(t, n, h, dtype, seed)
    valid = _valid(t, valid_mode, seed)
    given = {"oea": {"k0": max(1, k // 2)}, "lynx": {"alpha": 2.0, "beta": 3} if n == 64 else {}}
    p = resolve_params(policy, given.get(policy, {}), n, k)  # else the model defaults
    gemm = None if tiles is None else SkinnyGemmConfig(block_n=tiles[0], block_k=tiles[1], split_k=tiles[2])
    got_tally = _tally(tally_mode, n, k, t)
    wide = DEFAULT_CONFIG.with_(oea_fused_max_rows=32)  # OEA's single program up to 32 rows, as LYNX's
    logits, weights, ids = router_select_triton(
        x, w, k, policy, scoring, renorm, valid, p, None if got_tally is None else got_tally.layer(0),
        gemm_config=gemm, routing_config=wide)
    assert _counters_zero()
    assert logits.shape == (t, n) and logits.dtype == dtype and ids.dtype == torch.int64 and weights.dtype == FP32

    exact = F.linear(x.double(), w.double())  # [T, N]
    if dtype == FP32:
        torch.testing.assert_close(logits.double(), exact, rtol=1e-5, atol=1e-5)
    else:  # the fp32 sum rounded once to nearest: half an ulp (2**-8 relative), plus fp32 summation error
        torch.testing.assert_close(logits.double(), exact, rtol=2**-8 + 2**-16, atol=1e-4)
    torch.testing.assert_close(logits, F.linear(x, w))  # what the layer's gate(x) gives, within dtype bounds

    monkeypatch.setenv("LYNX_ROUTING_BACKEND", "torch")
    want_tally = _tally(tally_mode, n, k, t)
    want_w, want_ids = select_experts(logits, k, policy, scoring, renorm, valid,
                                      tally=None if want_tally is None else want_tally.layer(0), **p)
    assert torch.equal(ids, want_ids), (ids, want_ids)
    torch.testing.assert_close(weights, want_w, rtol=2e-6, atol=1e-30)
    if got_tally is not None:
        assert torch.equal(got_tally.finalize(t, valid), want_tally.finalize(t, valid))
        assert torch.equal(got_tally.hits, want_tally.hits)
        if tally_mode == "logits":
            assert torch.equal(got_tally.logits[0, :t], logits.float())


@interp_only
def test_interp_repeat_calls_are_identical() -> None:
    from lynx.kernels.router_route import router_select_triton
    from lynx.kernels.skinny_gemm import SkinnyGemmConfig

    x, w = _inputs(16, 128, 256, BF16, 3)
    p = resolve_params("lynx", {}, 128, 8)
    gemm = SkinnyGemmConfig(block_n=16, block_k=32, split_k=8)  # 8 partials per tile, summed in a fixed order
    first = router_select_triton(x, w, 8, "lynx", "softmax", True, None, p, gemm_config=gemm)
    for _ in range(2):
        again = router_select_triton(x, w, 8, "lynx", "softmax", True, None, p, gemm_config=gemm)
        assert all(torch.equal(a, b) for a, b in zip(first, again)) and _counters_zero()


@interp_only
def test_interp_reasons() -> None:
    from lynx.kernels.router_route import fused_router_reason, router_select_triton

    x, w = torch.randn(16, 64), torch.randn(128, 64)
    lynx = resolve_params("lynx", {}, 128, 8)
    assert fused_router_reason(x, w, 8, "lynx", lynx) is None
    assert fused_router_reason(torch.randn(64, 64), w, 8, "topk", {}) is None
    assert fused_router_reason(torch.randn(8, 64), w, 8, "oea", {"k0": 5}) is None  # OEA's last fused size
    assert "split" in fused_router_reason(torch.randn(9, 64), w, 8, "oea", {"k0": 5})
    assert "split" in fused_router_reason(torch.randn(33, 64), w, 8, "lynx", lynx)
    assert "T=65" in fused_router_reason(torch.randn(65, 64), w, 8, "topk", {})
    assert "weight is" in fused_router_reason(x, w.bfloat16(), 8, "topk", {})
    assert "N=300" in fused_router_reason(x, torch.randn(300, 64), 8, "topk", {})
    assert "overflow" in fused_router_reason(x, w, 8, "lynx", {"alpha": 3.0, "beta": 16})
    assert "no rows" in fused_router_reason(torch.randn(0, 64), w, 8, "topk", {})
    with pytest.raises(ValueError, match="split"):
        router_select_triton(torch.randn(33, 64), w, 8, "lynx", "softmax", True, None, lynx)


def _moe_layer(n: int, k: int, h: int, seed: int, shared: bool) -> torch.nn.Module:
    from lynx.layers.moe import SparseMoE
    from lynx.models.config import MoEConfig

    moe = MoEConfig(num_experts=n, top_k=k, intermediate_size=32, renormalize=not shared,
                    scoring="softmax", shared_expert_intermediate_size=48 if shared else 0)
    layer = SparseMoE(SimpleNamespace(moe=moe, hidden_size=h, hidden_act="silu"), moe_index=1)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in layer.parameters():
            param.copy_(torch.randn(param.shape, generator=g) / param.shape[-1] ** 0.5)
        layer.gate.weight.mul_(3.0)
    return layer


@interp_only
@pytest.mark.parametrize("policy, t, shared", [("topk", 7, False), ("lynx", 12, True), ("oea", 5, False),
                                               ("lynx", 40, False)])  # T=40: LYNX keeps two steps
def test_interp_moe_layer_equals_unfused(policy: str, t: int, shared: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import lynx.kernels.router_route as rr
    from lynx.context import ForwardContext, forward_context

    n, k, h = 64, 4, 96
    layer = _moe_layer(n, k, h, seed=t, shared=shared)
    x = torch.randn(t, h, generator=torch.Generator().manual_seed(t + 1))
    valid = torch.ones(t, dtype=torch.bool)
    valid[-2:] = False  # padding rows of a graph bucket
    params = {"alpha": 2.0, "beta": 3} if policy == "lynx" else {}
    calls: list[str] = []
    real = rr.router_select_triton

    def spy(*args: object, **kwargs: object) -> tuple:
        calls.append(args[3])
        return real(*args, **kwargs)

    monkeypatch.setattr(rr, "router_select_triton", spy)
    monkeypatch.setenv("LYNX_ROUTING_BACKEND", "triton")
    outs, counts = {}, {}
    for fused in ("1", "0"):
        monkeypatch.setenv("LYNX_FUSED_ROUTER", fused)
        tally = ExpertTally(2, n, k, torch.device("cpu"), max_tokens=t if policy != "topk" else 0)
        ctx = ForwardContext(is_prefill=False, valid=valid, routing_policy=policy, routing_params=params,
                             expert_tally=tally)
        with forward_context(ctx), torch.no_grad():
            outs[fused] = layer(x)
        counts[fused] = tally.finalize(t, valid).clone()
    assert calls == ([policy] if t <= 32 else [])
    torch.testing.assert_close(outs["1"], outs["0"], rtol=1e-5, atol=1e-6)
    assert torch.equal(counts["1"], counts["0"])
    assert torch.equal(outs["1"][-2:], torch.zeros(2, h)) or shared  # padding rows: no expert output


@interp_only
def test_interp_moe_layer_keeps_two_steps_where_required(monkeypatch: pytest.MonkeyPatch) -> None:
    import lynx.kernels.router_route as rr
    from lynx.context import ForwardContext, forward_context
    from lynx.errors import RoutingConfigError

    layer = _moe_layer(64, 4, 96, seed=0, shared=False)
    calls: list[str] = []
    monkeypatch.setattr(rr, "router_select_triton", lambda *a, **kw: calls.append("fused"))
    x = torch.randn(6, 96)
    monkeypatch.setenv("LYNX_ROUTING_BACKEND", "triton")
    monkeypatch.delenv("LYNX_FUSED_ROUTER", raising=False)  # opt-in: off by default
    with forward_context(ForwardContext(is_prefill=False, routing_policy="lynx")), torch.no_grad():
        layer(x)
    monkeypatch.setenv("LYNX_FUSED_ROUTER", "1")
    monkeypatch.setenv("LYNX_ROUTING_BACKEND", "torch")  # routing would not run in Triton
    with forward_context(ForwardContext(is_prefill=False, routing_policy="lynx")), torch.no_grad():
        layer(x)
    monkeypatch.setenv("LYNX_ROUTING_BACKEND", "triton")
    with forward_context(ForwardContext(is_prefill=True)), torch.no_grad():
        layer(torch.randn(70, 96))  # prefill-sized: T > 64
        nope = ForwardContext(is_prefill=False, routing_policy="nope")
        with pytest.raises(RoutingConfigError, match="unknown routing policy"), forward_context(nope):
            layer(x)
    layer.gate.bias = torch.nn.Parameter(torch.zeros(64))
    with forward_context(ForwardContext(is_prefill=False)), torch.no_grad():
        layer(x)
    assert calls == []
