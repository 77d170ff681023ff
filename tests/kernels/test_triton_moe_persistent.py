"""The one-launch fused-MoE kernel (``TritonMoEConfig(persistent=True)``, the default up to 16 tokens).

Three kinds of checks, one file:

* host-side rules (config validation, grid, residency arithmetic): plain CPU tests;
* an sm_90 compile (no GPU needed, as in test_triton_moe_compile.py): it compiles, both
  phases' weight loads are pipelined (``cp.async``), the block counters use release /
  acquire atomics, and ``ctas_per_sm`` CTAs fit on an H200 SM (shared memory and registers);
* Triton's CPU interpreter (``TestInterpreted``): the outer test reruns this file under
  ``TRITON_INTERPRET=1`` in a subprocess (the variable must be set before the kernels are
  defined). The interpreter runs programs one after another, so the full kernel runs with
  ``G = 1``; ``phases=(1, 2)`` (gate_up phase, then down phase, as two launches) runs
  ``G > 1`` and so the multi-program block tables and tile counters, without waits.
  What only a GPU can show (programs really waiting on each other, memory ordering,
  residency) is scripts/gpu_moe_persistent_check.py's job.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from moe_cases import make_case, per_token_oracle, rel_err

from lynx.testing.interpreter import assert_interpreted_cases_pass

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed (optional)")
compiled_only = pytest.mark.skipif(INTERPRET, reason="kernels are interpreted in this process")
H200_SMS, SM90_SMEM_PER_SM, SM90_THREADS = 132, 233472, 2048


# ----------------------------------------------------------------------------- host-side rules
@pytest.mark.parametrize("changes", [dict(align="kernel"), dict(align="legacy"), dict(fuse_sum=False),
                                     dict(ctas_per_sm=0), dict(ctas_per_sm2=2), dict(warps2=8),
                                     dict(stages2=2)])
def test_persistent_config_rejects_unsupported(changes: dict) -> None:
    from lynx.kernels.moe_config import TritonMoEConfig

    with pytest.raises(ValueError, match="persistent=True needs"):
        TritonMoEConfig(persistent=True, **changes)
    TritonMoEConfig(persistent=False, **changes)  # only the persistent combination is refused


def test_default_configs_one_launch_up_to_16_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    from lynx.kernels.moe_config import default_config

    monkeypatch.delenv("LYNX_MOE_PERSISTENT", raising=False)
    assert [default_config(b, 2048, 768).persistent for b in (1, 8, 16, 32, 64, 256)] == [True] * 3 + [False] * 3
    monkeypatch.setenv("LYNX_MOE_PERSISTENT", "0")
    two = default_config(16, 2048, 768)
    assert not two.persistent
    monkeypatch.delenv("LYNX_MOE_PERSISTENT")
    assert two.with_(persistent=True) == default_config(16, 2048, 768)  # the default differs only there
    monkeypatch.setenv("LYNX_MOE_PERSISTENT", "off")
    with pytest.raises(ValueError, match="LYNX_MOE_PERSISTENT='off'"):
        default_config(16, 2048, 768)


@needs_triton
@compiled_only
def test_one_launch_only_where_the_n_tiles_fit_half_a_wave() -> None:
    from lynx.kernels.triton_moe_persistent_host import grid_suits_one_launch

    wave = 3 * 132  # H200, 3 CTAs per SM
    assert grid_suits_one_launch(768 // 32, 2048 // 64, wave)  # Qwen3-30B-A3B
    assert grid_suits_one_launch(2560 // 32, 3584 // 64, wave)  # Qwen2-57B-A14B: 13-18% faster measured
    assert not grid_suits_one_launch(14336 // 32, 4096 // 64, wave)  # Mixtral-8x7B: 5% slower measured
    assert not grid_suits_one_launch(24, 199, wave)  # either phase


@needs_triton
@compiled_only
def test_driver_residency_falls_back_to_none(monkeypatch: pytest.MonkeyPatch) -> None:
    import lynx.kernels.cuda_driver as ph

    monkeypatch.setattr(ph, "libcuda", lambda: None)
    assert ph.driver_resident_ctas(1234, 128, 40960) is None  # no driver library: the hand count decides

    class FailingDriver:
        @staticmethod
        def cuOccupancyMaxActiveBlocksPerMultiprocessor(*args: object) -> int:  # noqa: N802 (driver API name)
            return 1  # CUDA_ERROR_INVALID_VALUE

    class Driver:
        @staticmethod
        def cuOccupancyMaxActiveBlocksPerMultiprocessor(blocks: object, *args: object) -> int:  # noqa: N802
            blocks._obj.value = 3  # ctypes.byref(...)._obj is the c_int
            return 0

    monkeypatch.setattr(ph, "libcuda", lambda: FailingDriver())
    assert ph.driver_resident_ctas(1234, 128, 40960) is None
    monkeypatch.setattr(ph, "libcuda", lambda: Driver())
    assert ph.driver_resident_ctas(1234, 128, 40960) == 3


@needs_triton
@compiled_only
@pytest.mark.parametrize("max_blocks,n1,n2,wave", [(8, 24, 32, 396), (136, 24, 32, 396), (40, 24, 32, 264),
                                                   (3, 24, 32, 264), (10, 448, 64, 396), (10, 3, 5, 1)])
def test_persistent_grid(max_blocks: int, n1: int, n2: int, wave: int) -> None:
    from lynx.kernels.triton_moe_persistent_host import persistent_grid

    grid, gm1, gm2 = persistent_grid(max_blocks, n1, n2, wave)
    assert 1 <= grid <= wave  # one wave at most: all programs resident
    for gm, n in ((gm1, n1), (gm2, n2)):
        assert 1 <= gm <= max_blocks
        assert gm * n <= grid or gm == 1  # the kernel's M-class rule (module doc)
    assert grid == min(wave, max(gm1 * n1, gm2 * n2))  # no idle program beyond the larger phase


@needs_triton
@compiled_only
def test_resident_ctas_arithmetic() -> None:
    from lynx.kernels.triton_moe_persistent_host import resident_ctas

    assert resident_ctas(128, 40960, 4, SM90_SMEM_PER_SM, SM90_THREADS) == 4  # registers: 65536 / (128*128)
    assert resident_ctas(240, 98304, 4, SM90_SMEM_PER_SM, SM90_THREADS) == 2
    assert resident_ctas(32, 120000, 4, SM90_SMEM_PER_SM, SM90_THREADS) == 1  # shared memory bound
    assert resident_ctas(32, 0, 16, SM90_SMEM_PER_SM, SM90_THREADS) == 4  # threads bound
    assert resident_ctas(255, 0, 8, SM90_SMEM_PER_SM, SM90_THREADS) == 1  # 256 registers per thread rounded


# ----------------------------------------------------------------------------- sm_90 compile
def compile_persistent(batch: int, hidden: int, inter: int, experts: int, top_k: int, dtype: str = "bf16",
                       token_rows: bool = False, pdl: bool = False):
    """The kernel as ``fused_experts_triton`` builds it on an H200, and its config."""
    import triton
    from test_triton_moe_compile import compile_sm90

    from lynx.kernels.moe_config import default_config
    from lynx.kernels.triton_moe_persistent_host import persistent_grid
    from lynx.kernels.triton_moe_align import align_params
    from lynx.kernels.triton_moe_persistent import moe_persistent_kernel, reset_block

    cfg = default_config(batch, hidden, inter).with_(align="fused", fuse_sum=True, persistent=True,
                                                     token_rows=token_rows)
    prm = align_params(batch * top_k, experts, cfg.block_m)
    n1, n2 = -(-inter // cfg.block_n1), -(-hidden // cfg.block_n2)
    _, gm1, gm2 = persistent_grid(prm.max_blocks, n1, n2, H200_SMS * cfg.ctas_per_sm)
    ptr = f"*{dtype}"
    sig = {"x_ptr": ptr, "w13_ptr": ptr, "w2_ptr": ptr, "inter_ptr": ptr, "pair_out_ptr": "*fp32", "out_ptr": ptr,
           "ids_ptr": "*i64", "weights_ptr": "*fp32", "table_ptr": "*i32", "ws_ptr": "*i32",
           **{name: "i32" for name in ("num_pairs", "num_tokens", "stride_x", "stride_w13e", "stride_w13n",
                                       "stride_w2e", "stride_w2n", "stride_inter", "stride_out", "gm1", "gm2")}}
    consts = dict(H=hidden, I=inter, TOP_K=top_k, BLOCK_M=cfg.block_m, BLOCK_N1=cfg.block_n1,
                  BLOCK_K1=cfg.block_k1, BLOCK_N2=cfg.block_n2, BLOCK_K2=cfg.block_k2,
                  DOT_PRECISION="tf32" if dtype == "bf16" else "ieee", NUM_EXPERTS=experts, E_POW2=prm.e_pow2,
                  P_POW2=prm.p_pow2, LOCAL1=triton.next_power_of_2(-(-prm.max_blocks // gm1)),
                  LOCAL2=triton.next_power_of_2(-(-prm.max_blocks // gm2)),
                  BLOCK_T=max(1, min(triton.next_power_of_2(batch), 2048 // cfg.block_n2)),
                  RESET=reset_block(prm.max_blocks), PHASES=3, TOKEN_ROWS=token_rows,
                  KP=triton.next_power_of_2(top_k))
    return compile_sm90(moe_persistent_kernel, sig, consts, cfg.warps1, cfg.stages1, pdl), cfg


def ptxas_registers(ptx: str, tmp_path: Path) -> int:
    """Registers per thread of the sm_90a cubin (Triton's bundled ptxas, as Triton runs it)."""
    import triton

    ptxas = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
    if not ptxas.exists():
        pytest.skip("Triton's bundled ptxas not found")
    src = tmp_path / "kernel.ptx"
    src.write_text(ptx)
    log = subprocess.run([str(ptxas), "-arch=sm_90a", "-v", str(src), "-o", str(tmp_path / "kernel.cubin")],
                         capture_output=True, text=True, check=True).stderr
    return int(re.search(r"Used (\d+) registers", log).group(1))


@needs_triton
@compiled_only
@pytest.mark.parametrize("batch,shape,token_rows", [(1, (2048, 768, 128, 8), False), (16, (2048, 768, 128, 8), False),
                                                    (64, (2048, 768, 128, 8), False), (16, (2048, 1024, 64, 8), False),
                                                    (16, (2048, 768, 128, 8), True), (64, (2048, 768, 128, 8), True)],
                         ids=["qwen3-b1", "qwen3-b16", "qwen3-b64", "olmoe-b16", "qwen3-b16-rows", "qwen3-b64-rows"])
def test_persistent_kernel_compiles_pipelines_and_fits(batch: int, shape: tuple, token_rows: bool,
                                                       tmp_path: Path) -> None:
    from lynx.kernels.triton_moe_persistent_host import resident_ctas

    kernel, cfg = compile_persistent(batch, *shape, token_rows=token_rows)
    ttgir, ptx = kernel.asm["ttgir"], kernel.asm["ptx"]
    # both phases' K loops are software-pipelined: cp.async multi-buffering in two loops
    assert ttgir.count("ttg.async_wait") >= 4, "weight loads are not pipelined in both phases"
    assert "cp.async.cg.shared.global" in ptx
    assert "histogram" in ttgir  # metadata derived in the kernel, once
    # block readiness: release add after each gate_up tile, acquire read in the spin, acq_rel tile/exit counters
    assert "atom.global.gpu.release.add" in ptx
    assert re.search(r"ld\.global\.gpu\.acquire|atom\.global\.gpu\.acquire", ptx), "no acquire read of ready[]"
    assert "atom.global.gpu.acq_rel.add" in ptx
    assert "ld.global.cg" in ptx and ".nc" not in ptx  # other CTAs' rows never through the non-coherent path
    regs = ptxas_registers(ptx, tmp_path)
    fit = resident_ctas(regs, kernel.metadata.shared, cfg.warps1, SM90_SMEM_PER_SM, SM90_THREADS)
    assert fit >= max(2, cfg.ctas_per_sm), (regs, kernel.metadata.shared, fit)


@needs_triton
@compiled_only
def test_token_rows_compile_for_two_slots() -> None:
    """k = 2 (Mixtral): a [BM, 2] tl.cumsum along the slots once tripped an assertion in
    Triton 3.6's scan lowering (the GPU check's compile failed); the slots are counted by
    pairwise comparison instead. (Mixtral itself keeps two launches: grid_suits_one_launch.)"""
    kernel, _ = compile_persistent(16, 4096, 14336, 8, 2, token_rows=True)
    assert "histogram" in kernel.asm["ttgir"]


@needs_triton
@compiled_only
@pytest.mark.parametrize("token_rows", [False, True])
def test_persistent_kernel_with_pdl_waits_before_touching_memory(token_rows: bool) -> None:
    """Its programs may become resident while the routing kernel still runs (PDL): no global
    access before the wait, so the spin-waits and counters only ever see this launch's data."""
    from lynx.testing.ptx import assert_pdl_waits_first

    kernel, _ = compile_persistent(16, 2048, 768, 128, 8, token_rows=token_rows, pdl=True)
    assert_pdl_waits_first(kernel.asm["ptx"])


# ----------------------------------------------------------------------------- interpreter
@pytest.mark.slow
@needs_triton
@compiled_only
def test_persistent_kernel_in_interpreter() -> None:
    assert_interpreted_cases_pass(__file__, "TestInterpreted", timeout=900)


CASES = [
    # (T, k, E, H, I, active, SMALL-tile config changes or None for the decode default)
    (1, 2, 8, 64, 32, None, None),  # default config: one K tile wider than H
    (5, 3, 8, 80, 48, None, {}),  # K tail in gate_up (80 % 32), pad row
    (16, 4, 32, 64, 40, 6, {}),  # few active experts, N tail in gate_up (40 % 16), K tail in down
    (21, 2, 8, 48, 32, None, {}),  # experts span more than one block
    (40, 2, 8, 48, 32, 2, {}),  # two experts, three blocks each
    (9, 8, 128, 32, 16, None, dict(block_n2=32)),  # E = 128, k = 8: the k-sum over 8 slots
    (40, 8, 128, 72, 40, 12, dict(block_m=32)),  # 320 pairs on 12 experts, N tails in both phases
    (7, 6, 64, 48, 24, None, dict(block_n1=8, block_k2=8)),  # many N tiles in phase A
]


@pytest.mark.skipif(not INTERPRET, reason="needs TRITON_INTERPRET=1 (run via test_persistent_kernel_in_interpreter)")
class TestInterpreted:
    @pytest.fixture(autouse=True)
    def _interpreter(self) -> None:
        from lynx.kernels.moe_interpret import patch_interpreter_sort
        from lynx.kernels.triton_interpret import patch_interpreter

        patch_interpreter()
        patch_interpreter_sort()  # NumPy tl.sort: the interpreter's bitonic network is minutes per test

    @staticmethod
    def config(changes: dict | None):
        from lynx.kernels.moe_config import TritonMoEConfig

        if changes is None:
            return TritonMoEConfig(block_m=16)
        small = TritonMoEConfig(block_m=16, block_n1=16, block_k1=32, block_n2=16, block_k2=16)
        return small.with_(**changes)

    @staticmethod
    def assert_zero(workspace: torch.Tensor) -> None:
        assert int(workspace.count_nonzero()) == 0, workspace.nonzero().flatten()[:8]

    @pytest.mark.parametrize("case_args", CASES, ids=lambda c: "T{}k{}E{}H{}I{}a{}".format(*c[:6]))
    @pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
    def test_matches_two_launches_and_reference(self, case_args: tuple, dtype: torch.dtype) -> None:
        from lynx.kernels import triton_moe as tm
        from lynx.kernels import triton_moe_persistent_host as ph

        t, k, e, h, i, active, changes = case_args
        pad = (1, t - 1) if t > 2 else ()
        case = make_case(t, k, e, h, i, dtype=dtype, active=active, pad_rows=pad, seed=t * 5 + h, poison=True)
        case.topk_weights[0, -1] = 0.0  # and one dropped pair of a kept token
        cfg = self.config(changes)
        two = tm.fused_experts_triton(*case.args(), config=cfg)
        one = tm.fused_experts_triton(*case.args(), config=cfg.with_(persistent=True))  # G = 1, full kernel
        workspace = ph.persistent_workspace(torch.device("cpu"))
        self.assert_zero(workspace)
        assert one.dtype == dtype and one.shape == (t, h)
        assert torch.equal(one, two)  # same tiles, same k-sum order: bit-identical
        for row in pad:
            assert torch.equal(one[row].float(), torch.zeros(h))
        assert rel_err(one, per_token_oracle(case)) < (1e-5 if dtype == torch.float32 else 2e-2)
        # G > 1: several programs per phase (block tables of M classes > 0, N tiles looped when G < n_tiles)
        routing = tm.make_routing(case.topk_ids, case.topk_weights, e, cfg)
        for programs in (2, 5, 64):
            out = ph.persistent_launch(case.hidden, case.w13, case.w2, routing, cfg.with_(persistent=True),
                                       workspace, programs=programs, phases=(1, 2))
            assert torch.equal(out, two), programs
            self.assert_zero(workspace)

    @pytest.mark.parametrize("case_args", [c for c in CASES if c[0] <= 16 and (c[6] or {}).get("block_m", 16) == 16],
                             ids=lambda c: "T{}k{}E{}H{}I{}a{}".format(*c[:6]))
    @pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
    def test_token_rows_match_sorted_blocks(self, case_args: tuple, dtype: torch.dtype) -> None:
        """Token-row blocks (one block per active expert, row t = token t, no sort) against the
        sorted blocks of the same tiles: each pair's row is the same dot products, but a row's
        position in the tile changes NumPy's fp32 matmul in the last bit (rel. 1.5e-7 seen)."""
        from lynx.kernels import triton_moe as tm
        from lynx.kernels import triton_moe_persistent_host as ph

        t, k, e, h, i, active, changes = case_args
        pad = (1, t - 1) if t > 2 else ()
        case = make_case(t, k, e, h, i, dtype=dtype, active=active, pad_rows=pad, seed=t * 7 + h, poison=True)
        case.topk_weights[0, -1] = 0.0  # a dropped pair of a kept token
        cfg = self.config(changes)
        two = tm.fused_experts_triton(*case.args(), config=cfg)
        rows = cfg.with_(persistent=True, token_rows=True)
        one = tm.fused_experts_triton(*case.args(), config=rows)
        workspace = ph.persistent_workspace(torch.device("cpu"))
        self.assert_zero(workspace)
        close = 1e-6 if dtype == torch.float32 else 4e-3
        assert rel_err(one, two) < close
        for row in pad:
            assert torch.equal(one[row].float(), torch.zeros(h))
        assert rel_err(one, per_token_oracle(case)) < (1e-5 if dtype == torch.float32 else 2e-2)
        routing = tm.make_routing(case.topk_ids, case.topk_weights, e, cfg)
        for programs in (2, 5, 64):
            out = ph.persistent_launch(case.hidden, case.w13, case.w2, routing, rows, workspace, programs=programs,
                                       phases=(1, 2))
            assert torch.equal(out, one), programs  # same blocks and rows whatever the grid
            self.assert_zero(workspace)

    def test_token_rows_repeated_ids_take_more_rounds(self) -> None:
        """A token routed twice to one expert (no policy does it, the API allows it) keeps both pairs."""
        from lynx.kernels import triton_moe as tm

        case = make_case(6, 3, 8, 32, 16, seed=4)
        case.topk_ids[2, 1] = case.topk_ids[2, 0]
        case.topk_ids[4, 2] = case.topk_ids[4, 1] = case.topk_ids[4, 0]  # three rounds for that expert
        cfg = self.config({})
        two = tm.fused_experts_triton(*case.args(), config=cfg)
        one = tm.fused_experts_triton(*case.args(), config=cfg.with_(persistent=True, token_rows=True))
        assert rel_err(one, two) < 1e-6
        assert rel_err(one, per_token_oracle(case)) < 1e-5

    def test_token_rows_need_one_row_per_token(self) -> None:
        from lynx.kernels import triton_moe as tm

        case = make_case(20, 2, 8, 32, 16, seed=3)
        with pytest.raises(ValueError, match="20 tokens > block_m=16"):
            tm.fused_experts_triton(*case.args(), config=self.config({}).with_(persistent=True, token_rows=True))

    def test_all_pairs_dropped_and_garbage_free_replays(self) -> None:
        from lynx.kernels import triton_moe as tm
        from lynx.kernels import triton_moe_persistent_host as ph

        case = make_case(3, 2, 8, 32, 16, seed=2)
        cfg = self.config({}).with_(persistent=True)
        weights = torch.zeros_like(case.topk_weights)  # no block at all: the k-sum still writes zeros
        out = tm.fused_experts_triton(case.hidden, case.w13, case.w2, weights, case.topk_ids, config=cfg)
        assert torch.equal(out, torch.zeros_like(out))
        self.assert_zero(ph.persistent_workspace(torch.device("cpu")))
        outs = [tm.fused_experts_triton(*case.args(), config=cfg) for _ in range(3)]  # replays: same result
        assert all(torch.equal(o, outs[0]) for o in outs)
        assert rel_err(outs[0], per_token_oracle(case)) < 1e-5

    def test_interpreter_refuses_waiting_programs(self) -> None:
        from lynx.kernels import triton_moe as tm
        from lynx.kernels import triton_moe_persistent_host as ph

        case = make_case(2, 2, 4, 32, 16, seed=1)
        cfg = self.config({}).with_(persistent=True)
        routing = tm.make_routing(case.topk_ids, case.topk_weights, 4, cfg)
        with pytest.raises(ValueError, match="one after another"):
            ph.persistent_launch(case.hidden, case.w13, case.w2, routing, cfg,
                                 ph.persistent_workspace(torch.device("cpu")), programs=4)


# ----------------------------------------------------------------------------- GPU script, dry run
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_moe_persistent_check.py"


@pytest.mark.slow
@needs_triton
@compiled_only
@pytest.mark.parametrize("hang", [False, True], ids=["dry-run", "watchdog"])
def test_gpu_script_dry_run(hang: bool, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["OUT"] = str(tmp_path)
    cmd = [sys.executable, str(SCRIPT), "--dry-run"] + (["--simulate-hang", "--watchdog-s", "2"] if hang else [])
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == (1 if hang else 0), proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "moe_persistent.json").read_text())
    # batches 1 and 4 (block_m 16), each with sorted blocks and token rows
    assert [(c["batch"], c["variant"]) for c in result["checks"]] == [
        (1, "persistent"), (1, "token_rows"), (4, "persistent"), (4, "token_rows")]
    configs = {r["config"] for r in result["rows"]}
    if hang:  # the child was killed: nothing passed, the one-launch variants are never timed
        assert "TIMEOUT" in result["checks"][0]["error"] and not any(c["ok"] for c in result["checks"])
        assert configs == {"two_launch"}
    else:
        assert all(c["ok"] and c["identical"] for c in result["checks"])
        assert configs == {"two_launch", "persistent", "token_rows"}
    assert proc.stdout.rstrip().splitlines()[-1].split()[0] == "tiny"  # the table comes last
