"""Triton routing kernels vs :func:`lynx.routing.select_experts` (the PyTorch reference).

Three groups:

* dispatch rules (plain process, Triton never imported): which backend serves a call;
* the kernels compiled for sm_90 without a GPU (lowering errors, shared memory);
* exactness in Triton's CPU interpreter: ids identical and weights within 2e-6 relative
  on random logits (skewed, tied, +-0.0, -inf, bf16/fp16, strided), padding rows, T=1,
  both scorings and renormalisations, both launch plans, several (N, k, alpha, beta, k0).
  ``TRITON_INTERPRET=1`` must be set before the kernels are defined and would leak into
  other tests, so these run in a subprocess that re-runs this file with it set
  (``test_interp_*`` are skipped in a normal process).
"""

from __future__ import annotations

import importlib.util
import os
import random
import re
import warnings

import pytest
import torch

from lynx.routing import select_experts
from lynx.routing.config import resolve_params
from lynx.routing.tally import ExpertTally
from lynx.testing.interpreter import assert_interpreted_cases_pass

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed (optional)")
interp_only = pytest.mark.skipif(not INTERPRET, reason="runs in the interpreter subprocess")
outer_only = pytest.mark.skipif(INTERPRET, reason="kernels are interpreted in this process")

if INTERPRET and HAS_TRITON:
    from lynx.kernels.triton_interpret import patch_interpreter

    patch_interpreter()  # numpy >= 2.4 loop-bound fix, before any kernel runs

    import triton
    import triton.language as tl

    from lynx.kernels.routing_select import select_top

    @triton.jit
    def select_top_kernel(hi_ptr, lo_ptr, ret_ptr, best_lo_ptr, best_idx_ptr, HI_MIN, LO_MIN, R: tl.constexpr,
                          BN: tl.constexpr, K: tl.constexpr, KP: tl.constexpr, HAS_HI: tl.constexpr,
                          LO_DISTINCT: tl.constexpr):
        """select_top on ``[R, BN]`` keys from memory (test_interp_select_top_matches_sorting)."""
        r, c, s = tl.arange(0, R)[:, None], tl.arange(0, BN), tl.arange(0, KP)[None, :]
        hi, lo = tl.load(hi_ptr + r * BN + c[None, :]), tl.load(lo_ptr + r * BN + c[None, :])
        retired, best_lo, best_idx = select_top(hi, lo, c, HI_MIN, LO_MIN, K, KP, HAS_HI, LO_DISTINCT)
        tl.store(ret_ptr + r * BN + c[None, :], retired)
        tl.store(best_lo_ptr + r * KP + s, best_lo)
        tl.store(best_idx_ptr + r * KP + s, best_idx)


# ----------------------------------------------------------------------------- dispatch
@outer_only
def test_auto_dispatch_keeps_torch_on_cpu_and_meta(monkeypatch: pytest.MonkeyPatch) -> None:
    from lynx.kernels.routing_dispatch import routing_backend

    monkeypatch.delenv("LYNX_ROUTING_BACKEND", raising=False)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    for device in ("cpu", "meta"):
        assert routing_backend(torch.zeros(4, 128, device=device), 8, "lynx", {"alpha": 3.0, "beta": 2}) == "torch"
    monkeypatch.setenv("LYNX_ROUTING_BACKEND", "torch")
    assert routing_backend(torch.zeros(4, 128), 8, "topk", {}) == "torch"


@outer_only
def test_forced_backend_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from lynx.kernels.routing_dispatch import routing_backend

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setenv("LYNX_ROUTING_BACKEND", "cuda")
    with pytest.raises(ValueError, match="LYNX_ROUTING_BACKEND"):
        routing_backend(torch.zeros(2, 8), 2, "topk", {})
    monkeypatch.setenv("LYNX_ROUTING_BACKEND", "triton")  # CPU tensor, no interpreter
    with pytest.raises(RuntimeError, match="cannot run"):
        select_experts(torch.zeros(2, 8), 2)


@outer_only
def test_unsupported_shapes_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from lynx.kernels.routing_dispatch import triton_unsupported_reason

    monkeypatch.setenv("TRITON_INTERPRET", "1")  # CPU tensors count as runnable
    ok = {"alpha": 3.0, "beta": 2}
    if not HAS_TRITON:
        assert "not installed" in triton_unsupported_reason(torch.zeros(4, 8), 2, "lynx", ok)
        return
    assert triton_unsupported_reason(torch.zeros(4, 128), 8, "lynx", ok) is None
    assert "N=300" in triton_unsupported_reason(torch.zeros(4, 300), 8, "topk", {})
    assert "overflow" in triton_unsupported_reason(torch.zeros(64, 16), 4, "lynx", {"alpha": 8.0, "beta": 12})
    assert "dtype" in triton_unsupported_reason(torch.zeros(4, 8, dtype=torch.int32), 2, "topk", {})


# ----------------------------------------------------------------------------- sm_90 build
@needs_triton
@outer_only
def test_kernel_config_from_the_environment_is_validated() -> None:
    from lynx.kernels.routing_plans import DEFAULT_CONFIG, RoutingKernelConfig, config_from_spec

    assert config_from_spec("") == RoutingKernelConfig() == DEFAULT_CONFIG  # the variable is unset in tests
    cfg = config_from_spec(" fused_max_rows=64, fused_warps=16 ")
    assert (cfg.fused_max_rows, cfg.fused_warps, cfg.block_rows) == (64, 16, 1)
    for bad, what in (("nope=1", "'nope=1'"), ("fused_max_rows", "name=value"), ("block_rows=x", "integer"),
                      ("fused_warps=3", "power of two"), ("block_rows=0", ">= 1"), ("block_rows_large=0", ">= 1"),
                      ("chunk_elems=-4", ">= 0")):
        with pytest.raises(ValueError, match=what):
            config_from_spec(bad)


@needs_triton
@outer_only
def test_launch_plans_follow_the_measured_crossovers() -> None:
    from lynx.kernels.routing_plans import DEFAULT_CONFIG, plan_is_fused, routing_plan

    fused = {p: [t for t in (1, 8, 9, 16, 32, 33, 64) if plan_is_fused(t, 128, p, DEFAULT_CONFIG)]
             for p in ("topk", "lynx", "oea")}
    assert fused == {"topk": [], "lynx": [1, 8, 9, 16, 32], "oea": [1, 8]}
    assert (DEFAULT_CONFIG.block_rows, DEFAULT_CONFIG.block_rows_large) == (1, 4)
    assert not plan_is_fused(16, 128, "oea", DEFAULT_CONFIG.with_(oea_fused_max_rows=8))
    assert plan_is_fused(16, 128, "oea", DEFAULT_CONFIG.with_(oea_fused_max_rows=16))
    # the cooperative plan from 8 rows (H200, section 10); the single program below it
    cpu = torch.device("cpu")
    plans = {p: [routing_plan(t, 128, p, DEFAULT_CONFIG, cpu) for t in (1, 7, 8, 64, 1024)] for p in ("topk", "lynx", "oea")}
    assert plans == {"topk": ["topk"] * 5, "lynx": ["fused", "fused", "coop", "coop", "coop"],
                     "oea": ["fused", "fused", "coop", "coop", "coop"]}
    off = DEFAULT_CONFIG.with_(coop_min_rows=0)
    assert [routing_plan(t, 128, "lynx", off, cpu) for t in (8, 64)] == ["fused", "split"]


@needs_triton
@outer_only
def test_cooperative_grid_keeps_every_program_resident() -> None:
    from lynx.kernels.routing_coop import coop_grid

    assert coop_grid(64, 128, 1, 16384, 132) == (1, 64)  # one row per program, one program per SM
    assert coop_grid(132, 128, 1, 16384, 132) == (1, 132)
    assert coop_grid(133, 128, 1, 16384, 132) == (2, 67)  # rows per program grow to stay within the SMs
    assert coop_grid(1024, 128, 1, 16384, 132) == (8, 128)
    assert coop_grid(100, 128, 4, 16384, 132) == (4, 25)
    assert coop_grid(100, 128, 3, 16384, 132) == (4, 25)  # BT is a power of two
    assert coop_grid(65536, 256, 1, 16384, 132) is None  # the tile would not fit: another plan
    assert coop_grid(65536, 128, 1, 16384, None) == (1, 65536)  # the interpreter: no residency limit


@needs_triton
@outer_only
def test_kernels_compile_for_sm90() -> None:
    """Every launch plan of the Qwen3-30B-A3B shape lowers for sm_90, without spills of
    whole tiles and with the row loads vectorised (what the JIT's specialisation of a
    contiguous [T, 128] bf16 tensor gives: stride_n == 1, stride_t divisible by 16)."""
    from triton import compile as triton_compile
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from lynx.kernels import routing_kernels as rk

    consts = "N stride_n HAS_VALID KEY16 WIDE PACK64 K KP BETA K0 K0P BT BN CHUNK".split()
    head = {"logits_ptr": "*bf16", "valid_ptr": "*u8", "parts_ptr": "*i8"}
    route_sig = {**head, "weights_ptr": "*fp32", "ids_ptr": "*i64", "hits_ptr": "*i32", "kept_ptr": "*fp32", "T": "i32",
                 "stride_t": "i32", "num_parts": "i32", "alpha_bits": "i64",
                 **dict.fromkeys(consts + ["ACTIVE", "SOFTMAX", "RENORM", "RESORT", "TALLY"], "constexpr")}
    active_sig = {**head, "T": "i32", "stride_t": "i32", "alpha_bits": "i64",
                  **dict.fromkeys(consts + ["POLICY"], "constexpr")}
    qwen3 = dict(N=128, stride_n=1, HAS_VALID=True, KEY16=True, WIDE=False, PACK64=False, K=8, KP=8, BETA=2, K0=5, K0P=8,
                 BN=128, CHUNK=32)
    score = dict(SOFTMAX=True, RENORM=True, RESORT=False, TALLY=rk.TALLY_LOGITS)
    builds = [  # (kernel, signature, constexprs, warps)
        (rk.route_kernel, route_sig, dict(qwen3, **score, ACTIVE=rk.LYNX_HERE, BT=16), 8),
        (rk.route_kernel, route_sig, dict(qwen3, ACTIVE=rk.OEA_HERE, BT=16, SOFTMAX=False, RENORM=False,
                                          RESORT=True, KEY16=False, TALLY=rk.TALLY_NONE), 8),
        (rk.route_kernel, {**route_sig, "logits_ptr": "*fp32"},
         dict(qwen3, **score, ACTIVE=rk.LYNX_HERE, BT=8, KEY16=False), 4),
        (rk.active_kernel, active_sig, dict(qwen3, POLICY=rk.LYNX, BT=4), 8),
        (rk.active_kernel, active_sig, dict(qwen3, POLICY=rk.LYNX, BT=4, PACK64=True), 8),
        (rk.active_kernel, active_sig, dict(qwen3, POLICY=rk.LYNX, BT=4, WIDE=True, N=100), 8),
        (rk.active_kernel, active_sig, dict(qwen3, POLICY=rk.OEA, BT=4), 2),
        (rk.route_kernel, route_sig, dict(qwen3, ACTIVE=rk.FROM_PARTS, BT=4, SOFTMAX=True, RENORM=False,
                                          RESORT=False, TALLY=rk.TALLY_MARKS), 2),
        (rk.route_kernel, route_sig, dict(qwen3, **score, ACTIVE=rk.NONE, BT=1, HAS_VALID=False), 1),
    ]
    for fn, sig, constexprs, warps in builds:
        aligned = {(i,): [["tt.divisibility", 16]] for i, (name, ty) in enumerate(sig.items())
                   if ty.startswith("*") or name == "stride_t"}
        src = ASTSource(fn=fn, signature=sig, constexprs=constexprs, attrs=aligned)
        kernel = triton_compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps, num_stages=1))
        assert kernel.metadata.shared <= 232448
        if constexprs["N"] == 128:  # rows load as vectors (no per-column mask)
            assert re.search(r"ld\.global(\.nc)?\.v[24]\.b32", kernel.asm["ptx"]), (fn, constexprs)
    from lynx.kernels.routing_coop import coop_route_kernel

    coop_sig = {**{k: v for k, v in route_sig.items() if k not in ("parts_ptr", "num_parts", "ACTIVE")},
                "sums_ptr": "*i64", "ws_ptr": "*i32", "PHASE": "constexpr", "POLICY": "constexpr"}
    params = list(coop_route_kernel.arg_names)  # the kernel's order
    coop_sig = {name: coop_sig[name] for name in params if name in coop_sig}
    coop = dict(qwen3, **score, PHASE=0, BT=1)
    coop_builds = [(coop_route_kernel, coop_sig, dict(coop, POLICY=rk.LYNX), 1),
                   (coop_route_kernel, coop_sig, dict(coop, POLICY=rk.OEA, RESORT=True, TALLY=rk.TALLY_MARKS), 1),
                   (coop_route_kernel, coop_sig, dict(coop, POLICY=rk.LYNX, BT=8, WIDE=True), 4),
                   (coop_route_kernel, {**coop_sig, "LOCAL_SUMS": "constexpr", "SUMS_CHUNK": "constexpr"},
                    dict(coop, POLICY=rk.LYNX, LOCAL_SUMS=True, SUMS_CHUNK=16), 1)]
    for fn, sig, constexprs, warps in coop_builds:
        aligned = {(i,): [["tt.divisibility", 16]] for i, (name, ty) in enumerate(sig.items())
                   if ty.startswith("*") or name == "stride_t"}
        kernel = triton_compile(ASTSource(fn=fn, signature=sig, constexprs=constexprs, attrs=aligned),
                                target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps, num_stages=1))
        ptx = kernel.asm["ptx"]
        # the grid barriers: a release arrival, an acquire spin, one or two of them (LYNX / OEA)
        barriers = 2 if constexprs["POLICY"] == rk.LYNX and not constexprs.get("LOCAL_SUMS") else 1
        assert len(re.findall(r"atom\.global\.gpu\.release\.add\.u32", ptx)) == barriers, constexprs
        assert len(re.findall(r"ld\.global\.gpu\.acquire\.b32", ptx)) == barriers, constexprs
        assert re.search(r"atom\.global\.gpu\.acq_rel\.add\.u32", ptx)  # the exit counter
        assert len(re.findall(r"ld\.global\.cg", ptx)) >= 1  # the other programs' sums / set, from L2
        assert kernel.metadata.shared <= 232448
    builds += coop_builds

    from lynx.testing.ptx import assert_pdl_waits_first

    for fn, sig, constexprs, warps in builds[::3]:  # with programmatic dependent launch (trigger, then wait)
        aligned = {(i,): [["tt.divisibility", 16]] for i, (name, ty) in enumerate(sig.items())
                   if ty.startswith("*") or name == "stride_t"}
        src = ASTSource(fn=fn, signature={**sig, "PDL": "constexpr"}, constexprs={**constexprs, "PDL": 1},
                        attrs=aligned)
        kernel = triton_compile(src, target=GPUTarget("cuda", 90, 32),
                                options=dict(num_warps=warps, num_stages=1, launch_pdl=True))
        assert_pdl_waits_first(kernel.asm["ptx"])


# ----------------------------------------------------------------------------- interpreter
@needs_triton
@outer_only
@pytest.mark.slow
def test_kernels_in_interpreter() -> None:
    assert_interpreted_cases_pass(__file__, "test_interp_")


def make_logits(seed: int, t: int, n: int, kind: str) -> torch.Tensor:
    """``[t, n]`` router logits of one of several kinds (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    if kind in ("ties", "ties16"):  # a coarse grid: equal logits, alpha * r often on a bin edge
        z = torch.randint(-4, 3, (t, n), generator=g).float() / 2
        return z.to(torch.bfloat16) if kind == "ties16" else z
    if kind in ("zeros", "zeros16"):  # only +0.0 and -0.0: the ranking must come from the index
        signs = torch.randint(0, 2, (t, n), generator=g).float() * 2 - 1
        return (signs * 0.0).to(torch.bfloat16 if kind == "zeros16" else torch.float32)
    if kind in ("inf", "inf16"):  # masked experts (-inf), every row keeps some finite ones
        z = torch.randn(t, n, generator=g)
        z[torch.rand(t, n, generator=g) < 0.3] = float("-inf")
        z[:, :2] = torch.randn(t, 2, generator=g)
        return z.to(torch.float16 if kind == "inf16" else torch.float32)
    if kind in ("bf16", "fp16"):
        return (torch.randn(t, n, generator=g) * 3).to(torch.bfloat16 if kind == "bf16" else torch.float16)
    if kind == "strided":  # a column slice of a wider tensor
        return (torch.randn(t, n + 3, generator=g) * 2)[:, 1 : n + 1]
    if kind == "skewed":  # trained-router-like: expert popularity + token topics + noise
        pop, topics = torch.randn(n, generator=g) * 0.5, torch.randn(4, n, generator=g) * 1.5
        return pop + topics[torch.randint(0, 4, (t,), generator=g)] + torch.randn(t, n, generator=g)
    return torch.randn(t, n, generator=g) * float(torch.empty(()).uniform_(0.1, 6.0, generator=g))


def make_valid(seed: int, t: int, mode: str) -> torch.Tensor | None:
    g = torch.Generator().manual_seed(seed + 7)
    if mode == "all":
        return None
    if mode == "random":
        return torch.rand(t, generator=g) < 0.6
    valid = torch.zeros(t, dtype=torch.bool)
    if mode == "last":  # the first valid row sits in the last row block
        valid[-1] = True
    return valid  # "none"


# (T, N, k, policy, params, scoring, renormalize, logits kind, valid mode, fused)
EDGE_CASES = [
    (1, 128, 8, "lynx", {}, "softmax", True, "skewed", "all", True),
    (1, 128, 8, "oea", {}, "sigmoid", False, "gauss", "all", True),
    (1, 128, 8, "topk", {}, "softmax", False, "bf16", "all", False),
    (16, 128, 8, "lynx", {}, "softmax", True, "skewed", "random", True),  # Qwen3-30B-A3B
    (16, 128, 8, "lynx", {}, "softmax", True, "skewed", "random", False),
    (12, 128, 8, "oea", {"k0": 5}, "softmax", False, "bf16", "random", False),
    (24, 64, 6, "lynx", {"alpha": 0.7, "beta": 5}, "softmax", False, "ties", "random", True),  # int64 m'
    (24, 64, 6, "lynx", {"alpha": 6.0, "beta": 5}, "sigmoid", True, "ties", "random", False),
    (9, 160, 6, "lynx", {"alpha": 1.1, "beta": 2}, "sigmoid", False, "skewed", "all", False),  # DeepSeek-V2
    (6, 8, 8, "oea", {"k0": 8}, "softmax", True, "gauss", "random", True),  # k == N
    (5, 4, 1, "lynx", {}, "softmax", False, "ties", "random", False),  # k = 1
    (5, 4, 1, "oea", {"k0": 1}, "sigmoid", True, "gauss", "random", True),
    (7, 16, 4, "lynx", {}, "softmax", True, "zeros", "none", True),
    (7, 16, 4, "lynx", {}, "sigmoid", False, "zeros16", "random", False),
    (9, 32, 8, "oea", {"k0": 3}, "softmax", False, "inf16", "random", True),
    (56, 64, 6, "lynx", {"alpha": 3.0, "beta": 4}, "softmax", True, "bf16", "random", False),  # int64 m'
    (33, 128, 8, "lynx", {}, "softmax", True, "skewed", "last", True),
    (12, 32, 4, "lynx", {"alpha": 0.5, "beta": 3}, "softmax", True, "ties16", "random", True),  # exact edges
    (12, 32, 4, "lynx", {"alpha": 2.0, "beta": 4}, "sigmoid", False, "ties", "all", False),
    (7, 16, 4, "oea", {"k0": 2}, "softmax", True, "inf", "last", False),
    (10, 32, 4, "lynx", {"alpha": 0.3, "beta": 1}, "softmax", True, "inf", "last", False),
    (10, 32, 3, "lynx", {"alpha": 3.0, "beta": 3}, "softmax", False, "fp16", "all", True),
    (6, 24, 5, "oea", {"k0": 3}, "sigmoid", False, "strided", "random", False),
    (6, 24, 5, "lynx", {}, "sigmoid", True, "strided", "random", True),
]


def random_cases(count: int, seed: int = 2024) -> list[tuple]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        t, n = rng.choice([1, 2, 3, 5, 8, 11, 16]), rng.choice([4, 8, 16, 24, 64])
        k = rng.randint(1, min(n, 8))
        policy = rng.choice(["topk", "lynx", "oea"])
        params: dict = {}
        if policy == "lynx" and rng.random() < 0.8:
            params = {"alpha": rng.choice([0.3, 0.5, 0.7, 1.1, 2.0, 3.0, 6.0]), "beta": rng.randint(1, 5)}
        elif policy == "oea" and rng.random() < 0.8:
            params = {"k0": rng.randint(1, k)}
        out.append((t, n, k, policy, params, rng.choice(["softmax", "sigmoid"]), rng.random() < 0.5,
                    rng.choice(["gauss", "skewed", "ties", "ties16", "bf16", "zeros", "inf", "zeros16", "inf16"]),
                    rng.choice(["all", "random", "last", "none"]), rng.random() < 0.5))
    return out


CASES = EDGE_CASES + random_cases(24)


@interp_only
@pytest.mark.parametrize("case", CASES, ids=[f"c{i}" for i in range(len(CASES))])
def test_interp_kernels_equal_select_experts(case: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    from lynx.kernels.routing_plans import RoutingKernelConfig
    from lynx.kernels.routing_triton import select_experts_triton

    t, n, k, policy, params, scoring, renorm, kind, valid_mode, fused = case
    logits = make_logits(t * 1000 + n + k, t, n, kind)
    valid = make_valid(t + n, t, valid_mode)
    monkeypatch.setenv("LYNX_ROUTING_BACKEND", "torch")
    want = ExpertTally(1, n, k, torch.device("cpu"))
    want_w, want_ids = select_experts(logits, k, policy, scoring, renorm, valid, tally=want.layer(0), **params)
    cfg = RoutingKernelConfig(fused_max_rows=64 if fused else 0, oea_fused_max_rows=64 if fused else 0,
                              block_rows=(1, 2, 4)[t % 3], lynx_pack64=t % 2 == 1, coop_min_rows=0)
    p = resolve_params(policy, params, n, k)
    got = ExpertTally(1, n, k, torch.device("cpu"))  # both rows marked in the kernel
    got_w, got_ids = select_experts_triton(logits, k, policy, scoring, renorm, valid, p, cfg, tally=got.layer(0))
    assert got_ids.dtype == torch.int64 and got_w.dtype == torch.float32
    assert torch.equal(got_ids, want_ids), (got_ids, want_ids)
    torch.testing.assert_close(got_w, want_w, rtol=2e-6, atol=1e-30)
    assert torch.equal(got.hits, want.hits), (got.hits, want.hits)
    kept = ExpertTally(1, n, k, torch.device("cpu"), max_tokens=t)  # logits kept, plain top-k ranked later
    select_experts_triton(logits, k, policy, scoring, renorm, valid, p, cfg, tally=kept.layer(0))
    torch.testing.assert_close(kept.logits[0], logits.float(), rtol=0, atol=0)
    assert torch.equal(kept.finalize(t, valid), want.finalize(t, valid))
    assert torch.equal(kept.hits, want.hits)
    no_tally_w, no_tally_ids = select_experts_triton(logits, k, policy, scoring, renorm, valid, p, cfg)
    assert torch.equal(no_tally_ids, got_ids) and torch.equal(no_tally_w, got_w)
    if policy != "topk" and not fused:  # the same call through the cooperative plan (its phases one launch each)
        from lynx.kernels.routing_coop import coop_workspace

        coop = cfg.with_(coop_min_rows=1, coop_block_rows=(1, 2, 4)[(t + 1) % 3],
                         coop_local_sums_max_rows=64 if (t + k) % 2 else 0)  # LYNX's s' both ways
        marks = ExpertTally(1, n, k, torch.device("cpu"))
        coop_w, coop_ids = select_experts_triton(logits, k, policy, scoring, renorm, valid, p, coop,
                                                 tally=marks.layer(0))
        assert torch.equal(coop_ids, want_ids), (coop_ids, want_ids)
        torch.testing.assert_close(coop_w, want_w, rtol=2e-6, atol=1e-30)
        assert torch.equal(marks.hits, want.hits)
        assert not coop_workspace(logits.device).any()  # every call leaves the cooperative workspace zero


@interp_only
@pytest.mark.parametrize("rows, bn, k, has_hi, lo_distinct, wide", [
    (1, 128, 8, True, True, False), (1, 128, 8, False, True, True), (1, 128, 1, False, False, False),
    (4, 64, 6, True, False, False), (2, 16, 5, False, True, False), (8, 64, 8, True, True, False),
])
def test_interp_select_top_matches_sorting(rows: int, bn: int, k: int, has_hi: bool, lo_distinct: bool,
                                           wide: bool) -> None:
    """select_top against a sort by (hi desc, lo desc, index asc) on keys with many ties
    (int32 and int64, with and without the primary key, distinct or repeating ``lo``)."""
    import triton

    g = torch.Generator().manual_seed(rows * bn + k)
    dtype = torch.int64 if wide else torch.int32
    hi = torch.randint(-3, 3, (rows, bn), generator=g, dtype=dtype)  # few values: ties everywhere
    if lo_distinct:  # distinct per row (as 16-bit keys with the index in the low byte)
        lo = (torch.randint(-50, 50, (rows, bn), generator=g, dtype=dtype) << 8) | (255 - torch.arange(bn))
    else:
        lo = torch.randint(-4, 4, (rows, bn), generator=g, dtype=dtype)
    kp = triton.next_power_of_2(k)
    lo_min = hi_min = torch.iinfo(dtype).min
    ret, best_lo = torch.empty_like(hi if has_hi else lo), torch.empty(rows, kp, dtype=dtype)
    best_idx = torch.empty(rows, kp, dtype=torch.int32)
    select_top_kernel[(1,)](hi, lo, ret, best_lo, best_idx, hi_min, lo_min, rows, bn, k, kp, has_hi, lo_distinct)
    for r in range(rows):
        order = sorted(range(bn), key=lambda e: ((-int(hi[r, e]) if has_hi else 0), -int(lo[r, e]), e))[:k]
        assert best_idx[r, :k].tolist() == order, (r, best_idx[r].tolist(), order)
        assert best_lo[r, :k].tolist() == [int(lo[r, e]) for e in order]
        assert (best_lo[r, k:] == lo_min).all() and (best_idx[r, k:] == 0).all()
        want = (hi if has_hi else lo)[r].clone()
        want[order] = hi_min
        assert torch.equal(ret[r], want)


@interp_only
def test_interp_select_experts_dispatches_to_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    import lynx.kernels.routing_triton as rt

    logits, valid = make_logits(3, 6, 64, "skewed"), make_valid(3, 6, "random")
    monkeypatch.setenv("LYNX_ROUTING_BACKEND", "torch")
    want_w, want_ids = select_experts(logits, 4, "lynx", valid=valid)
    real, calls = rt.select_experts_triton, []

    def spy(*args: object, **kwargs: object) -> tuple:
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(rt, "select_experts_triton", spy)
    monkeypatch.setenv("LYNX_ROUTING_BACKEND", "triton")
    got_w, got_ids = select_experts(logits, 4, "lynx", valid=valid)
    assert calls == ["lynx"]
    assert torch.equal(got_ids, want_ids)
    torch.testing.assert_close(got_w, want_w, rtol=2e-6, atol=1e-30)


@interp_only
def test_interp_cooperative_plan_falls_back_without_its_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    """During a graph capture before any eager call the workspace does not exist: the call
    takes the single-program or split plan (same result), warning once, and launches nothing
    of the cooperative kernel."""
    import lynx.kernels.routing_coop as rc
    from lynx.kernels.routing_plans import DEFAULT_CONFIG
    from lynx.kernels.routing_triton import select_experts_triton

    launches: list[int] = []
    real = rc.coop_route_kernel

    class Spy:
        def __getitem__(self, grid: tuple) -> object:
            launches.append(grid[0])
            return real[grid]

    logits, valid = make_logits(5, 12, 32, "bf16"), make_valid(5, 12, "random")
    monkeypatch.setenv("LYNX_ROUTING_BACKEND", "torch")
    want_w, want_ids = select_experts(logits, 4, "lynx", valid=valid)
    p = resolve_params("lynx", {}, 32, 4)
    monkeypatch.setattr(rc, "coop_route_kernel", Spy())
    select_experts_triton(logits, 4, "lynx", "softmax", True, valid, p, DEFAULT_CONFIG)
    assert launches == [12] * 3  # the spy sees the plan's launches (one per phase in the interpreter)
    monkeypatch.setattr(rc, "split_k_counters", lambda device: None)
    monkeypatch.setattr(rc, "_warned_capture", [])
    launches.clear()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(2):
            got_w, got_ids = select_experts_triton(logits, 4, "lynx", "softmax", True, valid, p, DEFAULT_CONFIG)
            assert launches == [] and torch.equal(got_ids, want_ids)
            torch.testing.assert_close(got_w, want_w, rtol=2e-6, atol=1e-30)
    assert sum("cooperative routing" in str(w.message) for w in seen) == 1  # once per process


@needs_triton
def test_tally_buffers_are_checked_before_the_kernel_writes() -> None:
    from lynx.kernels.routing_triton import select_experts_triton
    from lynx.routing.tally import LayerTally

    logits = torch.randn(6, 16)
    p = resolve_params("lynx", {}, 16, 2)
    for bad, message in [
        (LayerTally(torch.zeros(2, 8, dtype=torch.int32), None), "tally.hits"),
        (LayerTally(torch.zeros(16, 2, dtype=torch.int32).t(), None), "tally.hits"),
        (LayerTally(torch.zeros(2, 16, dtype=torch.int32), torch.zeros(5, 16)), "tally.logits"),
        (LayerTally(torch.zeros(2, 16, dtype=torch.int32), torch.zeros(6, 16, dtype=torch.float64)), "tally.logits"),
    ]:
        with pytest.raises(ValueError, match=message):
            select_experts_triton(logits, 2, "lynx", "softmax", True, None, p, tally=bad)


def test_fused_plan_warps() -> None:
    from lynx.kernels.routing_plans import DEFAULT_CONFIG, _fused_warps

    assert [_fused_warps(rows, 128, DEFAULT_CONFIG) for rows in (1, 2, 8, 16, 32)] == [1, 1, 4, 4, 8]

