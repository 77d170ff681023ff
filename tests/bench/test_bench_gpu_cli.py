"""``lynx bench kernels|routing|attention``: help, the one-line error without CUDA, old script wrappers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lynx.bench import gpu_check
from lynx.cli import main

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = {
    "kernels": ["--dry-run", "--device", "--budget", "--parts", "--tmp", "--json"],
    "routing": ["--dry-run", "--step-ms", "--budget", "--seed", "--json"],
    "attention": ["--dry-run", "--parts", "--json"],
}
MEASURES = {"kernels": "active experts", "routing": "exactness", "attention": "paged decode attention"}


@pytest.mark.parametrize("verb", sorted(OPTIONS))
def test_help_explains_the_verb_and_names_its_options(verb, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", verb, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: lynx bench {verb}")
    assert MEASURES[verb] in out and "--dry-run" in out
    for option in OPTIONS[verb]:
        assert option in out, option


def test_bench_help_lists_the_new_verbs(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = capsys.readouterr().out
    assert all(verb in out for verb in ("decode", "kernels", "routing", "attention"))


@pytest.mark.parametrize("verb", sorted(OPTIONS))
def test_without_cuda_one_line_error(verb, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "cuda_available", lambda: False)
    monkeypatch.setenv("OUT", str(tmp_path))
    assert main(["bench", verb, "--json", str(tmp_path / "out.json")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("lynx: error:") and captured.err.count("\n") == 1
    assert f"lynx bench {verb} needs a CUDA GPU" in captured.err and "Traceback" not in captured.err
    assert captured.out == ""  # nothing started
    assert list(tmp_path.iterdir()) == []  # and no JSON written


def test_unknown_part_is_a_clear_error(capsys):
    assert main(["bench", "kernels", "--parts", "check,nope"]) == 2
    assert "unknown kernels part(s) nope" in capsys.readouterr().err
    assert main(["bench", "attention", "--parts", "grpah"]) == 2
    assert "unknown attention part(s) grpah" in capsys.readouterr().err


@pytest.mark.parametrize("verb", sorted(OPTIONS))
def test_old_script_is_a_wrapper_with_the_same_options(verb):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / f"gpu_{verb}_check.py"), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert all(option in proc.stdout for option in OPTIONS[verb])


@pytest.mark.skipif(gpu_check.cuda_available(), reason="would start the real GPU run")
def test_old_script_without_cuda_one_line_error():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_routing_check.py")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("gpu_routing_check.py: error: lynx bench routing needs a CUDA GPU")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.slow
def test_routing_dry_run_end_to_end(tmp_path):
    """The moved routing check still runs (CPU, Triton interpreter) and writes the same JSON fields."""
    pytest.importorskip("triton")
    out = tmp_path / "routing.json"
    # a child process: the dry run switches Triton to its interpreter for the whole process
    proc = subprocess.run([sys.executable, "-m", "lynx.cli", "bench", "routing", "--dry-run", "--budget", "30",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert set(result) == {"env", "args", "records", "table"}
    assert result["args"] == {"dry_run": True, "step_ms": 9.0, "budget": 30.0, "seed": 0}
    assert result["env"]["device"] == "cpu" and "config" in result["env"]
    kinds = {r["kind"] for r in result["records"]}
    assert "error" not in kinds and {"exact", "dispatch"} <= kinds
    assert all(r["ok"] for r in result["records"] if r["kind"] in ("exact", "dispatch"))
    assert result["table"].startswith("exactness:") and "##### summary" in proc.stdout


def test_kernels_batch_options_parse_and_reach_the_parts():
    import argparse

    from lynx.bench.kernels import _batch_args, batch_list
    from lynx.bench.kernels_part import MODELS_BATCHES, TIME_BATCHES, KernelPart

    assert batch_list("1,8, 16") == (1, 8, 16)
    for bad in ("", "a,2", "0,4", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            batch_list(bad)
    args = argparse.Namespace(batches=(1, 128), models_batches=None)
    assert _batch_args(args) == ["--batches", "1,128"]
    part_args = dict(deadline=0.0, result=None, dry_run=False, device="cpu")
    p = KernelPart(argparse.Namespace(**part_args, batches=(1, 128), models_batches=(32,)))
    assert p.time_batches == (1, 128) and p.models_batches == (32,)
    p = KernelPart(argparse.Namespace(**part_args))  # options absent: the measured defaults
    assert p.time_batches == TIME_BATCHES and p.models_batches == MODELS_BATCHES
