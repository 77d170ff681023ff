"""The run context shared by the GPU checks: budget, records, error guard, output paths."""

from __future__ import annotations

import json
import subprocess

import pytest

from lynx.bench import gpu_check
from lynx.bench.gpu_check import GpuUnavailableError, RunContext, json_output_path, require_cuda
from lynx.errors import LynxError


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_left_counts_down_to_the_deadline_and_goes_negative():
    clock = FakeClock(1000.0)
    ctx = RunContext(1030.0, clock=clock)
    assert ctx.left() == 30.0
    clock.now = 1029.5
    assert ctx.left() == 0.5
    clock.now = 1045.0
    assert ctx.left() == -15.0  # past the deadline: the parts' "left() < 0" stops must fire
    ctx.deadline = 1100.0  # the next part gets its own deadline
    assert ctx.left() == 55.0


def test_left_uses_wall_time_by_default():
    import time

    ctx = RunContext(time.time() + 100)
    assert 99 < ctx.left() <= 100


def test_record_prints_and_rewrites_the_whole_json_after_each_record(tmp_path, capsys):
    result = tmp_path / "part.json"
    ctx = RunContext(0.0, result)
    ctx.record(kind="time", backend="triton", us=12.345678, ok=True)
    assert json.loads(result.read_text()) == [{"kind": "time", "backend": "triton", "us": 12.345678, "ok": True}]
    ctx.record(kind="note", what="stopped")
    assert json.loads(result.read_text()) == ctx.records  # valid JSON of all records, not appended fragments
    assert [r["kind"] for r in ctx.records] == ["time", "note"]
    out = capsys.readouterr().out.splitlines()
    assert out == ["  kind=time backend=triton us=12.35 ok=True", "  kind=note what=stopped"]


def test_record_without_result_file_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ctx = RunContext(0.0)
    ctx.record(kind="exact", ok=False)
    assert ctx.records == [{"kind": "exact", "ok": False}]
    assert list(tmp_path.iterdir()) == []


def test_guard_returns_the_value_and_passes_arguments():
    ctx = RunContext(0.0)
    assert ctx.guard("add", lambda a, b=0: a + b, 2, b=3) == 5
    assert ctx.records == []


def test_guard_catches_records_and_goes_on(tmp_path, capsys):
    result = tmp_path / "part.json"
    ctx = RunContext(0.0, result)

    def boom(n: int) -> int:
        raise ValueError(f"bad shape {n}")

    assert ctx.guard("time triton b=16", boom, 16) is None
    assert ctx.records == [{"kind": "error", "what": "time triton b=16", "error": "ValueError: bad shape 16"}]
    assert json.loads(result.read_text()) == ctx.records  # a crash later still leaves the error on disk
    out = capsys.readouterr().out
    assert "!! time triton b=16 failed: ValueError: bad shape 16" in out
    assert "Traceback" in out and "in boom" in out  # the printed traceback points at the failing code
    assert ctx.guard("next", lambda: "ok") == "ok"


def test_guard_cuts_long_errors_to_max_error_chars():
    ctx = RunContext(0.0, max_error_chars=40)
    ctx.guard("long", lambda: (_ for _ in ()).throw(RuntimeError("x" * 1000)))
    assert ctx.records[0]["error"] == ("RuntimeError: " + "x" * 1000)[:40]
    assert RunContext(0.0).max_error_chars == 500  # the kernels/attention default (routing passes 400)


def test_guard_does_not_swallow_keyboard_interrupt():
    ctx = RunContext(0.0)

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ctx.guard("interrupt", interrupt)
    assert ctx.records == []


def test_json_output_path(tmp_path, monkeypatch):
    monkeypatch.delenv("OUT", raising=False)
    assert json_output_path(None, "kernels.json") is None
    monkeypatch.setenv("OUT", str(tmp_path))
    assert json_output_path(None, "kernels.json") == tmp_path / "kernels.json"  # what the scripts always did
    assert json_output_path(str(tmp_path / "x.json"), "kernels.json") == tmp_path / "x.json"  # --json wins


def test_require_cuda(monkeypatch):
    monkeypatch.setattr(gpu_check, "cuda_available", lambda: False)
    with pytest.raises(GpuUnavailableError, match="lynx bench kernels needs a CUDA GPU") as err:
        require_cuda("kernels", "cuda")
    assert isinstance(err.value, LynxError) and "\n" not in str(err.value)
    with pytest.raises(GpuUnavailableError):
        require_cuda("kernels", "cuda:1")
    require_cuda("kernels", "cpu")  # dry runs need no GPU
    monkeypatch.setattr(gpu_check, "cuda_available", lambda: True)
    require_cuda("routing", "cuda")


def test_child_runs_the_module_with_a_bare_lynx_namespace(tmp_path):
    """Parts run in a child that imports lynx.kernels and the bench modules but never the engine."""
    (tmp_path / "probe_child.py").write_text(
        "import json, sys\n"
        "def child_main(argv):\n"
        "    import lynx.bench.kernels, lynx.bench.attention, lynx.kernels\n"
        "    print(json.dumps({'argv': argv, 'engine': 'lynx.engine' in sys.modules,\n"
        "                      'lynx_path': list(sys.modules['lynx'].__path__)}))\n"
        "    return 3\n")
    proc = subprocess.run(gpu_check.child_command("probe_child", ["--part", "check"]), capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 3, proc.stderr
    info = json.loads(proc.stdout)
    assert info == {"argv": ["--part", "check"], "engine": False, "lynx_path": [str(gpu_check.LYNX_DIR)]}
