"""The ``lynx`` command line, end to end on the built-in tiny models."""

from __future__ import annotations

import json

import pytest

from lynx.cli import main


def test_generate_json_on_builtin_default(capsys):
    assert main(["generate", "--device", "cpu", "--prompt", "The invoice total is", "--prompt", "Chart",
                 "--max-tokens", "5", "--routing", "lynx", "--ignore-eos", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [len(o["token_ids"]) for o in out["outputs"]] == [5, 5]
    assert [o["prompt"] for o in out["outputs"]] == ["The invoice total is", "Chart"]
    assert out["stats"]["routing"] == "lynx" and out["stats"]["num_decode_steps"] == 4
    assert out["stats"]["mean_active_experts_after"] <= out["stats"]["mean_active_experts_before"]


def test_generate_text_output(capsys):
    assert main(["generate", "--device", "cpu", "--max-tokens", "3", "--ignore-eos"]) == 0
    out = capsys.readouterr().out
    assert "tokens in" in out and "routing=topk" in out


def test_inspect_builtin(capsys):
    assert main(["inspect", "tiny-moe", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["architecture"] == "Qwen3MoeForCausalLM"
    assert info["parameters_active"] < info["parameters_total"]
    assert set(info["routing_defaults"]) == {"topk", "lynx", "oea"}
    assert main(["inspect", "tiny-dense"]) == 0
    assert "Qwen3ForCausalLM" in capsys.readouterr().out


def test_errors_are_one_line(capsys, tmp_path):
    assert main(["inspect", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lynx: error:") and "no config.json" in err and "Traceback" not in err
    assert main(["generate", "--device", "cpu", "--routing", "lynx", "--routing-param", "gamma=1"]) == 2
    assert "gamma" in capsys.readouterr().err
    assert main(["generate", "--device", "cpu", "--max-tokens", "0"]) == 2
    assert "max_tokens" in capsys.readouterr().err


def test_eval_end_to_end_synthetic(tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert main(["eval", "--model", "tiny-moe", "--task", "chartqa", "--synthetic", "6", "--routing", "lynx",
                 "--batch-size", "3", "--device", "cpu", "--output", str(out_dir)]) == 0
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["n"] == 6 and summary["batch_size"] == 3 and summary["routing"] == "lynx"
    preds = [json.loads(line) for line in (out_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 6 and all("prediction" in p and "score" in p for p in preds)


@pytest.mark.parametrize("argv", [["--help"], ["generate", "--help"], ["inspect", "--help"], ["eval", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    assert "usage: lynx" in capsys.readouterr().out


def test_bench_decode_on_cpu(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "decode", "--model", "tiny-moe", "--device", "cpu", "--batch", "1,4",
                 "--decode-steps", "5", "--prompt-len", "6", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = {(r["routing"], r["batch"]): r for r in result["rows"]}
    assert set(rows) == {(p, b) for p in ("topk", "lynx", "oea") for b in (1, 4)}
    assert rows[("topk", 4)]["active_experts_after"] == rows[("topk", 4)]["active_experts_before"]
    assert rows[("lynx", 4)]["expert_bytes_per_step"] <= rows[("topk", 4)]["expert_bytes_per_step"]
    # Batch of one: every policy is top-k.
    assert rows[("lynx", 1)]["active_experts_after"] == rows[("topk", 1)]["active_experts_after"] == 4
    assert "x floor" in capsys.readouterr().out


def test_eval_keeps_going_when_a_document_exceeds_the_context(tmp_path):
    """docvqa documents are long; with a tiny context some are refused, the rest scored."""
    out_dir = tmp_path / "run"
    assert main(["eval", "--model", "tiny-moe", "--task", "docvqa", "--synthetic", "4", "--batch-size", "4",
                 "--device", "cpu", "--max-model-len", "160", "--max-tokens", "4", "--output", str(out_dir)]) == 0
    summary = json.loads((out_dir / "summary.json").read_text())
    preds = [json.loads(line) for line in (out_dir / "predictions.jsonl").read_text().splitlines()]
    assert summary["n"] == 4 and len(preds) == 4
    assert summary["num_failed"] >= 1
    failed = [p for p in preds if p.get("error")]
    assert len(failed) == summary["num_failed"] and all("context holds 160" in p["error"] for p in failed)
