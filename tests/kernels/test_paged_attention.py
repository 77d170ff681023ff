"""Paged decode attention: PyTorch reference vs a float64 oracle, dispatch, Triton kernels.

The Triton cases run in Triton's CPU interpreter in a subprocess (``TRITON_INTERPRET=1``
must be set before kernels are defined and would leak into later tests): this file runs
them itself when executed as a script. An sm_90 ahead-of-time compile checks lowering and
that the K/V loads are pipelined. Both skip when Triton is not installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys

import pytest
import torch

from lynx.kernels import paged_attention as pa
from lynx.kernels.paged_attention_cases import decode_attention_oracle, make_paged_case, rel_err

HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed (optional)")

# (context_lens, Hq, Hkv, D, block_size, width_blocks, window)
CASES = [
    ([1, 7, 16, 33], 4, 2, 16, 4, 9, None),  # GQA, ctx 1, page-aligned and ragged ends
    ([5, 64, 1], 6, 2, 8, 16, 4, None),  # group of 3 (not a power of two), D 8, full width
    ([40, 3, 17], 3, 3, 32, 4, 12, None),  # MHA
    ([1, 9, 30, 48], 8, 2, 16, 4, 12, 5),  # sliding window shorter than most rows
    ([12, 2], 2, 1, 24, 8, 2, 64),  # window longer than every row: no effect
]


@pytest.mark.parametrize("case_args", CASES, ids=lambda c: f"ctx{c[0]}-h{c[1]}/{c[2]}-d{c[3]}-w{c[6]}")
def test_reference_matches_float64_oracle(case_args: tuple) -> None:
    lens, hq, hkv, d, bs, width, window = case_args
    case = make_paged_case(lens, hq, hkv, d, bs, width, window=window, seed=len(lens) + d)
    scale = d**-0.5
    want = decode_attention_oracle(case, scale)
    got = pa.paged_decode_attention_reference(*case.args(), scale, window)
    assert got.dtype == torch.float32 and got.shape == (len(lens), hq, d)
    assert rel_err(got, want) < 1e-5
    bf16 = make_paged_case(lens, hq, hkv, d, bs, width, window=window, dtype=torch.bfloat16, seed=len(lens) + d)
    got16 = pa.paged_decode_attention_reference(*bf16.args(), scale, window)
    assert got16.dtype == torch.bfloat16 and rel_err(got16, decode_attention_oracle(bf16, scale)) < 2e-2


def test_oracle_ignores_pages_it_does_not_own() -> None:
    """Sanity of the oracle itself: a row's result depends only on its own attended keys."""
    case = make_paged_case([6, 20], 2, 1, 16, 4, 6, window=8, seed=3)
    base = decode_attention_oracle(case, 0.25)
    case.clean_k[case.block_tables[0, 0]] += 5.0  # row 0's first page: row 1 must not move
    moved = decode_attention_oracle(case, 0.25)
    assert not torch.equal(base[0], moved[0]) and torch.equal(base[1], moved[1])


def test_decode_attention_on_cpu_is_the_reference() -> None:
    case = make_paged_case([3, 11, 1], 4, 2, 16, 4, 5, seed=1)
    want = pa.paged_decode_attention_reference(*case.args(), 0.25, None)
    assert pa.resolve_attention_backend(case.q, case.k_cache, case.v_cache) == "torch"
    assert torch.equal(pa.paged_decode_attention(*case.args(), 0.25, None), want)


def test_backend_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    case = make_paged_case([3], 2, 1, 16, 4, 1)
    with pytest.raises(ValueError, match="unknown attention backend"):
        pa.set_attention_backend("flash")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises((RuntimeError, ValueError)):  # CPU tensors and no interpreter (or no triton)
        pa.paged_decode_attention(*case.args(), 0.25, None, backend="triton")
    monkeypatch.setenv("LYNX_ATTENTION_BACKEND", "torch")
    try:
        importlib.reload(pa)  # the variable is read at import
        assert pa._backend == "torch"
        assert pa.resolve_attention_backend(case.q, case.k_cache, case.v_cache) == "torch"
    finally:
        monkeypatch.delenv("LYNX_ATTENTION_BACKEND")
        importlib.reload(pa)
    assert pa._backend == "auto"


@needs_triton
@pytest.mark.parametrize("batch,hkv,width", [(1, 4, 512), (16, 4, 512), (64, 8, 512), (512, 4, 512),
                                             (64, 4, 2048), (1, 16, 2048)])
def test_default_config_is_valid(batch: int, hkv: int, width: int) -> None:
    from lynx.kernels.paged_attention_triton import WORKSPACE_BYTES, default_config

    cfg = default_config(batch, 8 * hkv, hkv, 128, width * 16, num_sms=132)
    parts = -(-width * 16 // cfg.partition_size)
    assert cfg.partition_size % cfg.block_n == 0 and cfg.partition_size & (cfg.partition_size - 1) == 0
    assert batch * 8 * hkv * parts * 128 * 4 <= WORKSPACE_BYTES


# ------------------------------------------------------------------ Triton (interpreter)
def interpreter_cases() -> int:
    """Triton vs reference on CPU under the interpreter (run in the subprocess). Returns #cases."""
    from lynx.kernels.triton_interpret import patch_interpreter

    patch_interpreter()
    from lynx.kernels.paged_attention_triton import PagedAttentionConfig

    small = PagedAttentionConfig(partition_size=16, block_n=16)  # many partitions per row
    runs = [(c, cfg, dt) for c in CASES for cfg, dt in ((small, torch.float32), (None, torch.float32))]
    runs += [(CASES[0], small, torch.bfloat16), (CASES[3], small, torch.float16),
             (([1, 70, 200, 129], 16, 2, 128, 16, 16, None), None, torch.float32),  # Qwen3-like group 8
             (([300, 1, 90], 4, 4, 64, 16, 32, 100), small.with_(partition_size=64, block_n=32), torch.float32)]
    for (lens, hq, hkv, d, bs, width, window), cfg, dtype in runs:
        case = make_paged_case(lens, hq, hkv, d, bs, width, window=window, dtype=dtype, poison=True, seed=d)
        scale = d**-0.5
        want = pa.paged_decode_attention_reference(*case.args(clean=True), scale, window)
        if cfg is None:
            got = pa.paged_decode_attention(*case.args(), scale, window, backend="triton")
        else:
            from lynx.kernels.paged_attention_triton import paged_decode_attention_triton

            got = paged_decode_attention_triton(*case.args(), scale, window, config=cfg)
        tol = 1e-5 if dtype == torch.float32 else 2e-2
        err = rel_err(got, want)
        assert got.dtype == dtype and torch.isfinite(got.float()).all(), f"{lens} {dtype}: NaN (read poison)"
        assert err < tol, f"{lens} h{hq}/{hkv} d{d} w{window} {dtype} {cfg}: rel err {err:.2e}"
        # the one-launch merge (last-arriving program) and the two-launch merge agree bit for bit,
        # and every call leaves the shared arrival counters at zero
        from lynx.kernels.paged_attention_triton import default_config, paged_decode_attention_triton
        from lynx.kernels.skinny_gemm import split_k_counters

        base = cfg or default_config(len(lens), hq, hkv, d, width * bs, 4)
        two = paged_decode_attention_triton(*case.args(), scale, window, config=base.with_(fused_reduce=False))
        assert torch.equal(got, two), f"{lens} {dtype} {cfg}: fused merge differs from the reduce kernel"
        assert not split_k_counters(got.device).any(), "arrival counters not reset"
    # q as the engine passes it: a view of the fused qkv projection, row stride (Hq + 2*Hkv) * D
    case = make_paged_case([9, 30], 4, 2, 16, 4, 8, seed=5)
    qkv = torch.randn(2, 8 * 16)
    case.q = qkv[:, : 4 * 16].view(2, 4, 16)
    got = pa.paged_decode_attention(*case.args(), 0.25, None, backend="triton")
    assert rel_err(got, pa.paged_decode_attention_reference(*case.args(), 0.25, None)) < 1e-5
    return len(runs) + 1 + launch_cases() + engine_case() + rope_cases() + engine_rope_case()


def launch_cases() -> int:
    """One launch really skips the reduce kernel; fallbacks; rows outside the contract leave counters at zero."""
    import lynx.kernels.paged_attention_triton as pat
    from lynx.kernels.skinny_gemm import split_k_counters

    calls: list[int] = []
    real = pat.paged_decode_reduce_kernel

    class Spy:  # records launches of the reduce kernel, then runs it
        def __getitem__(self, grid):  # noqa: ANN001, ANN204
            calls.append(1)
            return real[grid]

    pat.paged_decode_reduce_kernel = Spy()
    try:
        case = make_paged_case([1, 7, 16, 33], 4, 2, 16, 4, 9, seed=11)
        small = pat.PagedAttentionConfig(partition_size=8, block_n=4)
        one = pat.paged_decode_attention_triton(*case.args(), 0.25, None, config=small)
        assert calls == [], "the one-launch path launched the reduce kernel"
        two = pat.paged_decode_attention_triton(*case.args(), 0.25, None, config=small.with_(fused_reduce=False))
        assert calls == [1] and torch.equal(one, two)
        slots, pat.LOW_SLOTS = pat.LOW_SLOTS, 4  # 4 rows x 2 KV heads do not fit: two launches
        try:
            assert torch.equal(pat.paged_decode_attention_triton(*case.args(), 0.25, None, config=small), one)
        finally:
            pat.LOW_SLOTS = slots
        assert calls == [1, 1]
    finally:
        pat.paged_decode_reduce_kernel = real
    # outside the contract: a row with no key (ctx 0, or window 0) gives zeros on both paths, and a
    # row longer than its table (it reads the next row's pages) must not leave a counter behind
    case = make_paged_case([9, 30, 12], 4, 2, 16, 4, 8, seed=12)
    case.context_lens[0] = 0
    for window in (None, 0):
        for cfg in (small, small.with_(fused_reduce=False)):
            got = pat.paged_decode_attention_triton(*case.args(), 0.25, window, config=cfg)
            assert torch.equal(got[0], torch.zeros_like(got[0])), (window, cfg)
            if window == 0:
                assert torch.equal(got, torch.zeros_like(got))
    case.context_lens[0] = 8 * 4 + 6
    pat.paged_decode_attention_triton(*case.args(), 0.25, None, config=small)
    assert not split_k_counters(case.q.device).any(), "a row longer than its table left a counter set"
    case.context_lens[0] = 9
    want = pa.paged_decode_attention_reference(*case.args(), 0.25, None)
    assert rel_err(pat.paged_decode_attention_triton(*case.args(), 0.25, None, config=small), want) < 1e-5
    return 5


def engine_case() -> int:
    """Greedy generation of the built-in tiny-moe: same tokens with either decode backend."""
    from lynx import LLM, SamplingParams

    llm = LLM("tiny-moe", device="cpu", dtype="float32", block_size=4)
    prompts, params = ["The invoice total is", "Chart: sales by year, 2019 to 2024"], SamplingParams(max_tokens=8,
                                                                                                   temperature=0)
    tokens = {}
    for backend in ("torch", "triton"):
        pa.set_attention_backend(backend)
        tokens[backend] = [out.token_ids for out in llm.generate(prompts, params)]
    assert tokens["torch"] == tokens["triton"], tokens
    return 1


def _bits(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous().view(torch.uint8)  # bitwise comparison, NaN poison included


# (context_lens, Hq, Hkv, D, block_size, width_blocks, window, q/k norm, partition/block_n or None, dtype)
ROPE_CASES = [
    ([1, 7, 16, 33], 4, 2, 16, 4, 9, None, True, (16, 16), torch.float32),  # GQA, rows of 1, many partitions
    ([40, 3, 17], 3, 3, 32, 4, 12, None, False, (16, 16), torch.float32),  # MHA, no norm
    ([1, 9, 30, 48], 8, 2, 64, 4, 12, 5, True, (16, 16), torch.float32),  # sliding window
    ([1, 70, 200, 129], 32, 4, 128, 16, 16, None, True, None, torch.float32),  # Qwen3-30B-A3B heads, default cfg
    ([300, 1, 90], 4, 4, 64, 16, 32, 100, False, (64, 32), torch.float32),  # window, new token mid-partition
    ([5, 33, 64, 2], 8, 2, 32, 8, 10, None, True, (16, 16), torch.bfloat16),
    ([17, 1, 50], 6, 2, 128, 16, 4, 20, True, (32, 16), torch.float16),  # group of 3
    ([2, 31, 32, 33], 2, 1, 16, 8, 5, None, False, (8, 8), torch.bfloat16),  # new token at page/partition edges
]


def rope_cases() -> int:
    """Norm + rotary + K/V store inside the attention kernel vs the two launches: bit-identical.

    The two-launch path is ``qk_norm_rope_triton`` (with the K/V store) then the attention
    kernel on its rotated q; both run the same Triton code in the interpreter. Each case adds a
    CUDA-graph padding row (context 1, table column 0 on a real page, slot = a trash page) and
    checks output rows, every cache byte (NaN poison included) and the counters.
    """
    from lynx.kernels.paged_attention_rope import paged_decode_attention_rope_triton
    from lynx.kernels.paged_attention_triton import PagedAttentionConfig, paged_decode_attention_triton
    from lynx.kernels.rope_triton import qk_norm_rope_triton
    from lynx.kernels.skinny_gemm import split_k_counters

    n = 0
    for i, (lens, hq, hkv, d, bs, width, window, norm, sizes, dtype) in enumerate(ROPE_CASES):
        case = make_paged_case(lens, hq, hkv, d, bs, width, window=window, dtype=dtype, poison=True, seed=100 + i)
        g = torch.Generator().manual_seed(i)
        b = len(lens) + 1  # + a padding row
        nb = case.k_cache.shape[0]
        trash = torch.full((1, bs, hkv, d), float("nan"), dtype=dtype)  # the engine's extra block
        k_cache, v_cache = torch.cat([case.k_cache, trash]), torch.cat([case.v_cache, trash])
        tables = torch.cat([case.block_tables, case.block_tables[-1:]])  # padding row reads a real page
        ctx_lens = torch.cat([case.context_lens, torch.ones(1, dtype=torch.int32)])
        last = (ctx_lens - 1).long()
        slots = tables[torch.arange(b), last // bs].long() * bs + last % bs
        slots[-1] = nb * bs  # padding row: trash slot
        # the new tokens' slots hold stale NaN: a kernel that reads them before the store shows up
        k_cache.view(-1, hkv, d)[slots[:-1]] = float("nan")
        v_cache.view(-1, hkv, d)[slots[:-1]] = float("nan")
        qkv = (2 * torch.randn(b, (hq + 2 * hkv) * d, generator=g)).to(dtype)
        q, k, v = qkv.split([hq * d, hkv * d, hkv * d], dim=-1)
        q, k, v = q.view(b, hq, d), k.view(b, hkv, d), v.view(b, hkv, d)  # strided views, as in the model
        freqs = torch.arange(512).float()[:, None] * (1.0 / 10000 ** (torch.arange(0, d, 2).float() / d))[None]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        qw = (1 + 0.1 * torch.randn(d, generator=g)).to(dtype) if norm else None
        kw = (1 + 0.1 * torch.randn(d, generator=g)).to(dtype) if norm else None
        scale = d**-0.5
        cfg = None if sizes is None else PagedAttentionConfig(partition_size=sizes[0], block_n=sizes[1])
        for cfg_i in ([cfg] if cfg is None else [cfg, cfg.with_(fused_reduce=False)]):
            kc_two, vc_two, kc_one, vc_one = k_cache.clone(), v_cache.clone(), k_cache.clone(), v_cache.clone()
            q_rot, _ = qk_norm_rope_triton(q, k, last, cos, sin, qw, kw, 1e-6, v, kc_two, vc_two, slots)
            want = paged_decode_attention_triton(q_rot, kc_two, vc_two, tables, ctx_lens, scale, window, config=cfg_i)
            got = paged_decode_attention_rope_triton(q, k, v, kc_one, vc_one, slots, tables, ctx_lens, cos, sin,
                                                     qw, kw, 1e-6, scale, window, config=cfg_i)
            tag = f"{lens} h{hq}/{hkv} d{d} w{window} norm={norm} {dtype} {cfg_i}"
            assert torch.isfinite(got[:-1].float()).all(), f"{tag}: NaN (read poison or a stale new-token slot)"
            assert torch.equal(_bits(got[:-1]), _bits(want[:-1])), f"{tag}: output differs from two launches"
            assert torch.equal(_bits(kc_one), _bits(kc_two)) and torch.equal(_bits(vc_one), _bits(vc_two)), \
                f"{tag}: cache differs from two launches"
            assert not split_k_counters(got.device).any(), "arrival counters not reset"
            ref = pa.paged_decode_attention_reference(q_rot[:-1], kc_two.nan_to_num(), vc_two.nan_to_num(),
                                                      tables[:-1], ctx_lens[:-1], scale, window)
            assert rel_err(got[:-1], ref) < (1e-5 if dtype == torch.float32 else 2e-2), tag
            n += 1
    return n


def engine_rope_case() -> int:
    """tiny-moe greedy tokens with LYNX_FUSED_ROPE_ATTENTION on and off (Triton attention)."""
    import lynx.kernels.paged_attention_rope as par
    from lynx import LLM, SamplingParams

    calls: list[int] = []
    real = par.paged_decode_attention_rope_triton

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    llm = LLM("tiny-moe", device="cpu", dtype="float32", block_size=4)
    prompts, params = ["The invoice total is", "Chart: sales by year, 2019 to 2024"], SamplingParams(max_tokens=8,
                                                                                                   temperature=0)
    pa.set_attention_backend("triton")
    tokens = {}
    par.paged_decode_attention_rope_triton = spy
    try:
        for flag in ("0", "1"):
            os.environ["LYNX_FUSED_ROPE_ATTENTION"] = flag
            tokens[flag] = [out.token_ids for out in llm.generate(prompts, params)]
            assert bool(calls) == (flag == "1"), (flag, len(calls))
    finally:
        os.environ.pop("LYNX_FUSED_ROPE_ATTENTION")
        par.paged_decode_attention_rope_triton = real
    assert tokens["0"] == tokens["1"], tokens
    return 1


@needs_triton
def test_triton_kernel_in_interpreter() -> None:
    env = dict(os.environ, TRITON_INTERPRET="1")
    proc = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, timeout=300)
    report = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, report
    assert "interpreter cases passed" in proc.stdout, report


@needs_triton
def test_gpu_fused_rope_attention_script_dry_run(tmp_path) -> None:
    """scripts/gpu_fused_rope_attention_check.py --dry-run: interpreter, tiny shapes, all checks pass."""
    import json
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "gpu_fused_rope_attention_check.py"
    env = dict(os.environ, OUT=str(tmp_path))
    proc = subprocess.run([sys.executable, str(script), "--dry-run"], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    records = json.loads((tmp_path / "fused_rope_attention.json").read_text())["records"]
    assert [r["kind"] for r in records].count("check") == 3 and [r["kind"] for r in records].count("time") == 2
    assert all(r["ok"] and r["out_bit_equal"] and r["k_diff_elems"] == 0 for r in records if r["kind"] == "check")
    assert "fused" in proc.stdout.splitlines()[-3]  # the table comes last


# ------------------------------------------------------------------ Triton (sm_90 compile)
SM90_SMEM = 232448


@needs_triton
@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1", reason="kernels are interpreted in this process")
@pytest.mark.parametrize("dtype,d,group", [("bf16", 128, 8), ("bf16", 128, 1), ("fp16", 64, 4), ("fp32", 128, 8),
                                           ("bf16", 256, 16)])
def test_kernels_compile_for_sm90_with_pipelined_kv_loads(dtype: str, d: int, group: int) -> None:
    from triton import compile as triton_compile
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from lynx.kernels import paged_attention_kernels as kern
    from lynx.kernels.paged_attention_triton import default_config

    def build(fn, sig: dict[str, str], consts: dict, warps: int, stages: int):  # noqa: ANN001, ANN202
        aligned = {(i,): [["tt.divisibility", 16]] for i, (n, t) in enumerate(sig.items())
                   if t.startswith("*") or n.startswith("stride")}
        src = ASTSource(fn=fn, signature=sig, constexprs=consts, attrs=aligned)
        return triton_compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps, num_stages=stages))

    cfg = default_config(16, 4 * group, 4, d, 8192, num_sms=132)
    ptr, f32, i32 = f"*{dtype}", "*fp32", "i32"
    names = ("q_ptr k_cache_ptr v_cache_ptr block_tables_ptr context_lens_ptr part_max_ptr part_sum_ptr part_out_ptr"
             " out_ptr counter_ptr")
    sig = dict(zip(names.split(), [ptr, ptr, ptr, "*i32", "*i32", f32, f32, f32, ptr, "*i32"]))
    sig.update(qk_scale="fp32", window=i32, num_parts=i32, stride_qb=i32, stride_qh=i32, stride_bt=i32,
               stride_cache_block=i32, stride_cache_tok=i32, stride_ob=i32, stride_oh=i32)
    group_consts = dict(HEAD_DIM=d, BLOCK_D=d, GROUP=group, BLOCK_G=max(16, group))
    consts = dict(group_consts, BLOCK_SIZE=16, PARTITION=cfg.partition_size, BLOCK_N=cfg.block_n,
                  DOT_PRECISION="ieee" if dtype == "fp32" else "tf32")
    sig.update({name: "constexpr" for name in consts} | {"FUSED": "constexpr"})
    for fused in (True, False):
        part = build(kern.paged_decode_partition_kernel, sig, dict(consts, FUSED=fused), cfg.num_warps, cfg.num_stages)
        assert part.metadata.shared <= SM90_SMEM
        assert "async_copy_global_to_local" in part.asm["ttgir"], "K/V loads are not pipelined"
        assert "cp.async.cg.shared.global" in part.asm["ptx"]
        assert ("atom.global.gpu.acq_rel.add" in part.asm["ptx"]) == fused, "arrival counter must be acquire/release"
    rsig = dict(part_max_ptr=f32, part_sum_ptr=f32, part_out_ptr=f32, out_ptr=ptr, context_lens_ptr="*i32",
                window=i32, num_parts=i32, stride_ob=i32, stride_oh=i32)
    rconsts = dict(group_consts, PARTITION=cfg.partition_size)
    rsig.update({name: "constexpr" for name in rconsts})
    build(kern.paged_decode_reduce_kernel, rsig, rconsts, 2, 1)


@needs_triton
@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1", reason="kernels are interpreted in this process")
@pytest.mark.parametrize("dtype,d,group,fused,norm", [("bf16", 128, 8, True, True), ("bf16", 128, 8, False, False),
                                                      ("fp16", 64, 4, True, False), ("fp32", 128, 8, True, True),
                                                      ("bf16", 256, 16, True, True), ("bf16", 16, 1, True, True)])
def test_rope_attention_kernel_compiles_for_sm90(dtype: str, d: int, group: int, fused: bool, norm: bool) -> None:
    """The norm + rotary + K/V-store partition kernel: lowers, K/V loads still pipelined (cp.async),
    shared memory fits, and a CTA barrier separates the new token's K/V stores from the first K/V load."""
    from triton import compile as triton_compile
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from lynx.kernels import paged_attention_rope as rope_kern
    from lynx.kernels.paged_attention_triton import default_config

    cfg = default_config(16, 4 * group, 4, d, 8192, num_sms=132)
    ptr, f32, i32 = f"*{dtype}", "*fp32", "i32"
    names = ("q_ptr k_ptr v_ptr cos_ptr sin_ptr qw_ptr kw_ptr slot_ptr k_cache_ptr v_cache_ptr block_tables_ptr"
             " context_lens_ptr part_max_ptr part_sum_ptr part_out_ptr out_ptr counter_ptr")
    types = [ptr, ptr, ptr, f32, f32, ptr, ptr, "*i64", ptr, ptr, "*i32", "*i32", f32, f32, f32, ptr, "*i32"]
    sig = dict(zip(names.split(), types))
    sig.update(qk_scale="fp32", window=i32, num_parts=i32, eps="fp32")
    sig.update({name: i32 for name in ("stride_qb stride_qh stride_kb stride_kh stride_vb stride_vh table_stride"
                                       " stride_bt stride_cache_block stride_cache_tok stride_ob stride_oh").split()})
    consts = dict(HEAD_DIM=d, BLOCK_D=d, GROUP=group, BLOCK_G=max(16, group), BLOCK_SIZE=16,
                  PARTITION=cfg.partition_size, BLOCK_N=cfg.block_n, DOT_PRECISION="ieee" if dtype == "fp32" else "tf32",
                  FUSED=fused, NORM=norm)
    sig.update({name: "constexpr" for name in consts})
    aligned = {(i,): [["tt.divisibility", 16]] for i, (n, t) in enumerate(sig.items())
               if t.startswith("*") or n.startswith("stride")}
    src = ASTSource(fn=rope_kern.paged_decode_rope_partition_kernel, signature=sig, constexprs=consts, attrs=aligned)
    k = triton_compile(src, target=GPUTarget("cuda", 90, 32),
                       options=dict(num_warps=cfg.num_warps, num_stages=cfg.num_stages))
    assert k.metadata.shared <= SM90_SMEM
    assert "async_copy_global_to_local" in k.asm["ttgir"], "K/V loads are not pipelined"
    lines = [line.strip() for line in k.asm["ptx"].splitlines()]
    first_load = next(i for i, line in enumerate(lines) if line.startswith("cp.async.cg.shared.global"))
    stores = [i for i, line in enumerate(lines[:first_load]) if "st.global" in line]
    assert stores, "the new token's K/V are not stored before the K/V loop"
    assert any(line.startswith("bar.sync") for line in lines[stores[-1]:first_load]), "no barrier after the K/V store"
    assert ("atom.global.gpu.acq_rel.add" in k.asm["ptx"]) == fused


if __name__ == "__main__":  # the interpreter subprocess of test_triton_kernel_in_interpreter
    assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"
    torch.set_num_threads(1)
    print(f"{interpreter_cases()} interpreter cases passed")
