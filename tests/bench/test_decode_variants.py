"""``lynx bench decode --variant``: parsing, the child command line, ratios, and a CPU run."""

from __future__ import annotations

import argparse
import json

import pytest

from lynx.bench.decode import add_decode_arguments, run_decode_bench
from lynx.bench.decode_variants import child_argv, comparison_table, parse_variant, parse_variants
from lynx.errors import LynxError


def test_parse_variant() -> None:
    assert parse_variant("base=") == ("base", {})
    assert parse_variant("w16=LYNX_ROUTING_KERNEL_CONFIG=fused_max_rows=64,fused_warps=16;LYNX_FUSED_ROUTER=1") == (
        "w16", {"LYNX_ROUTING_KERNEL_CONFIG": "fused_max_rows=64,fused_warps=16", "LYNX_FUSED_ROUTER": "1"})
    for bad in ("base", "=X=1", "a=lower=1", "a=NOVALUE", "a=X-Y=1"):
        with pytest.raises(LynxError):
            parse_variant(bad)
    with pytest.raises(LynxError, match="twice"):
        parse_variants(["a=", "a=X=1"])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_decode_arguments(p)
    return p


def test_child_command_line_reproduces_the_options() -> None:
    argv = ["--model", "tiny-moe", "--load-format", "dummy", "--routing", "lynx,oea", "--routing-param", "k0=3",
            "--routing-param", "alpha=2", "--batch", "4,8", "--prompt-len", "17", "--decode-steps", "9",
            "--device", "cpu", "--dtype", "float32", "--enforce-eager", "--gpu-memory-utilization", "0.5",
            "--seed", "3", "--variant", "a=", "--json", "out.json"]
    args = _parser().parse_args(argv)
    again = _parser().parse_args(child_argv(args))
    assert {k: v for k, v in vars(again).items() if k not in ("variant", "json_path")} == \
        {k: v for k, v in vars(args).items() if k not in ("variant", "json_path")}
    assert again.variant is None and again.json_path is None


def test_comparison_table_ratios() -> None:
    rows = lambda ms: [{"routing": "topk", "batch": 16, "step_ms": ms}]  # noqa: E731
    text = comparison_table({"base": {"rows": rows(8.0)}, "fast": {"rows": rows(4.0)}})
    assert "8.000 (1.00x)" in text and "4.000 (2.00x)" in text


def test_variants_run_in_child_processes_with_their_environment(tmp_path) -> None:  # noqa: ANN001
    common = ["--model", "tiny-moe", "--device", "cpu", "--batch", "1", "--routing", "topk", "--prompt-len", "8",
              "--decode-steps", "3"]
    out = tmp_path / "variants.json"
    args = _parser().parse_args(common + ["--variant", "base=", "--variant", "torch=LYNX_ATTENTION_BACKEND=torch",
                                          "--json", str(out)])
    result = run_decode_bench(args)
    saved = json.loads(out.read_text())
    assert list(saved["variants"]) == ["base", "torch"] == list(result["variants"])
    assert saved["variants"]["torch"]["env"] == {"LYNX_ATTENTION_BACKEND": "torch"}
    assert all(len(v["rows"]) == 1 and v["rows"][0]["step_ms"] > 0 for v in saved["variants"].values())
    # the variable reaches the child: an invalid backend makes that variant's run fail, and says which
    bad = _parser().parse_args(common + ["--variant", "bad=LYNX_ATTENTION_BACKEND=bogus"])
    with pytest.raises(LynxError, match="variant bad failed"):
        run_decode_bench(bad)
