"""``lynx eval`` runner with an injected fake engine (the real engine has its own tests)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import lynx
from lynx.errors import LynxError, RoutingConfigError
from lynx.eval.prompts import INSTRUCTION, build_prompt, postprocess
from lynx.eval.runner import EvalError, add_eval_arguments, load_eval_samples, run_eval
from lynx.routing import parse_routing_args as parse_routing_params
from lynx.workloads import DocQASample, generate_docvqa


@dataclass
class FakeSamplingParams:
    max_tokens: int = 16
    temperature: float = 1.0


@dataclass
class FakeOutput:
    text: str
    token_ids: list[int]
    prompt_token_ids: list[int]


@dataclass
class FakeLLM:
    """Answers from a prompt -> text table (default: a wrong answer); records every call."""

    answers: dict[str, str] = field(default_factory=dict)
    batches: list[list[str]] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def generate(self, prompts: list[str], params: Any) -> list[FakeOutput]:
        self.batches.append(list(prompts))
        self.params.append(params)
        texts = [self.answers.get(p, "no idea") for p in prompts]
        return [
            FakeOutput(t, list(range(len(t.split()) + 1)), list(range(len(p.split())))) for p, t in zip(prompts, texts)
        ]

    def stats(self) -> dict[str, Any]:
        return {"calls": len(self.batches), "mean_active_experts_after": 3.5}


@pytest.fixture(autouse=True)
def fake_sampling_params(monkeypatch: pytest.MonkeyPatch) -> None:
    # The runner imports SamplingParams lazily from the engine; keep these tests engine-free.
    monkeypatch.setattr(lynx, "SamplingParams", FakeSamplingParams, raising=False)


def parse(*argv: str) -> argparse.Namespace:
    return add_eval_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_prompt_template_and_postprocessing() -> None:
    s = DocQASample("1", "What is the total?", ["$5"], context="Total $5")
    assert build_prompt(s) == "Total $5\nWhat is the total?\n" + INSTRUCTION
    assert build_prompt(DocQASample("2", "Q?", ["a"])) == "Q?\n" + INSTRUCTION
    assert postprocess("  \n $5.00 \nBecause the table says so.") == "$5.00"
    assert postprocess("") == ""


def test_synthetic_docvqa_oracle_run(tmp_path: Path) -> None:
    args = parse(
        "--model",
        "tiny-moe",
        "--task",
        "docvqa",
        "--synthetic",
        "10",
        "--batch-size",
        "4",
        "--routing",
        "lynx",
        "--routing-param",
        "alpha=3",
        "--routing-param",
        "mode=fast",
        "--seed",
        "5",
        "--output",
        str(tmp_path / "run"),
    )
    samples = list(generate_docvqa(10, seed=5, split="test"))
    llm = FakeLLM({build_prompt(s): s.answers[-1] + "\nextra line" for s in samples[:7]})
    summary = run_eval(args, llm=llm)

    assert [len(b) for b in llm.batches] == [4, 4, 2]
    assert llm.batches[0][0] == build_prompt(samples[0])
    assert llm.params[0].max_tokens == 128 and llm.params[0].temperature == 0.0
    assert summary["n"] == 10 and summary["overall"] == pytest.approx(0.7)
    assert summary["task"] == "docvqa" and summary["metric"] == "anls" and summary["model"] == "tiny-moe"
    assert summary["routing"] == "lynx" and summary["routing_params"] == {"alpha": 3, "mode": "fast"}
    assert summary["batch_size"] == 4 and summary["data"] == "synthetic:10" and summary["seed"] == 5
    assert summary["routing_stats"] == {"calls": 3, "mean_active_experts_after": 3.5}
    assert sum(sub["n"] for sub in summary["subsets"].values()) == 10
    assert summary["tokens"]["generated"] > 0 and summary["tokens"]["prompt"] > 0
    assert summary["wall_time_s"] >= summary["generation_time_s"] >= 0

    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [s.id for s in samples]
    assert set(rows[0]) >= {"id", "question", "prediction", "answers", "score", "subset"}
    assert rows[0]["prediction"] == samples[0].answers[-1] and rows[0]["score"] == 1.0
    assert rows[9]["prediction"] == "no idea" and rows[9]["score"] == 0.0


def _write_chartqa(root: Path) -> None:
    (root / "tables").mkdir(parents=True)
    (root / "test_human.json").write_text(
        json.dumps(
            [
                {"imgname": "a.png", "query": "Value in 2019?", "label": "100"},
                {"imgname": "a.png", "query": "Highest year?", "label": "2020"},
            ]
        )
    )
    (root / "test_augmented.json").write_text(
        json.dumps([{"imgname": "a.png", "query": "Is 2020 higher?", "label": "Yes"}])
    )
    (root / "tables" / "a.csv").write_text("Year,Value\n2019,100\n2020,130\n")


def test_chartqa_files_scores_per_subset(tmp_path: Path) -> None:
    _write_chartqa(tmp_path / "test")
    args = parse(
        "--model",
        "m",
        "--task",
        "chartqa",
        "--data",
        str(tmp_path / "test"),
        "--max-tokens",
        "8",
        "--output",
        str(tmp_path / "out"),
    )
    context = "Year,Value\n2019,100\n2020,130"
    llm = FakeLLM(
        {
            f"{context}\nValue in 2019?\n{INSTRUCTION}": "104",  # within 5 %
            # A numeric label 0.05 % off counts as right, as in the official metric.
            f"{context}\nHighest year?\n{INSTRUCTION}": "2019",
            f"{context}\nIs 2020 higher?\n{INSTRUCTION}": "no",
        }
    )
    summary = run_eval(args, llm=llm)
    assert llm.params[0].max_tokens == 8
    assert summary["metric"] == "relaxed_accuracy"
    assert summary["subsets"] == {"augmented": {"score": 0.0, "n": 1}, "human": {"score": 1.0, "n": 2}}
    assert summary["overall"] == pytest.approx(2 / 3)


def test_docvqa_files_with_ocr_and_limit(tmp_path: Path) -> None:
    ann = tmp_path / "val.json"
    ann.write_text(
        json.dumps(
            {
                "data": [
                    {
                        "questionId": 1,
                        "question": "What is the date?",
                        "question_types": ["form", "layout"],
                        "image": "documents/p_1.png",
                        "docId": 1,
                        "answers": ["12/03/1998"],
                    },
                    {"questionId": 2, "question": "Who?", "image": "documents/p_1.png", "docId": 1, "answers": ["x"]},
                ]
            }
        )
    )
    (tmp_path / "ocr").mkdir()
    (tmp_path / "ocr" / "p_1.json").write_text(
        json.dumps(
            {
                "status": "Succeeded",
                "recognitionResults": [
                    {
                        "page": 1,
                        "width": 10,
                        "height": 10,
                        "unit": "pixel",
                        "lines": [
                            {"boundingBox": [50, 0, 90, 0, 90, 10, 50, 10], "text": "12/03/1998"},
                            {"boundingBox": [0, 0, 40, 0, 40, 10, 0, 10], "text": "Date:"},
                        ],
                    }
                ],
            }
        )
    )
    args = parse(
        "--model",
        "m",
        "--task",
        "docvqa",
        "--data",
        str(ann),
        "--ocr-dir",
        str(tmp_path / "ocr"),
        "--limit",
        "1",
        "--output",
        str(tmp_path / "out"),
    )
    llm = FakeLLM({f"Date: 12/03/1998\nWhat is the date?\n{INSTRUCTION}": "12/03/98"})
    summary = run_eval(args, llm=llm)
    assert summary["n"] == 1 and summary["overall"] == pytest.approx(0.8)  # 2 edits over 10 characters
    assert summary["subsets"] == {
        "form": {"score": pytest.approx(0.8), "n": 1},
        "layout": {"score": pytest.approx(0.8), "n": 1},
    }
    assert summary["ocr_dir"] == str(tmp_path / "ocr")


def test_default_output_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    summary = run_eval(parse("--model", "m", "--task", "chartqa", "--synthetic", "3"), llm=FakeLLM())
    out = Path(summary["output_dir"])
    assert out.parent == Path("out/eval") and out.name.startswith("chartqa-topk-")
    assert (tmp_path / out / "summary.json").is_file()


def test_engine_without_stats_or_prompt_ids(tmp_path: Path) -> None:
    class Minimal:
        def generate(self, prompts: list[str], params: Any) -> list[Any]:
            return [argparse.Namespace(text="a", token_ids=[1]) for _ in prompts]

    summary = run_eval(
        parse("--model", "m", "--task", "docvqa", "--synthetic", "2", "--output", str(tmp_path)), llm=Minimal()
    )
    assert summary["routing_stats"] is None and summary["tokens"] == {"prompt": None, "generated": 2}


def test_engine_returning_wrong_count_fails(tmp_path: Path) -> None:
    class Broken(FakeLLM):
        def generate(self, prompts: list[str], params: Any) -> list[FakeOutput]:
            return super().generate(prompts, params)[:-1]

    with pytest.raises(RuntimeError, match="1 outputs for 2 prompts"):
        run_eval(parse("--model", "m", "--task", "docvqa", "--synthetic", "2", "--output", str(tmp_path)), llm=Broken())


def test_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        parse("--model", "m", "--task", "docvqa", "--data", "x", "--synthetic", "3")
    with pytest.raises(SystemExit):
        parse("--model", "m", "--task", "docvqa")
    with pytest.raises(SystemExit):
        parse("--model", "m", "--task", "docvqa", "--synthetic", "0")
    with pytest.raises(EvalError, match="--ocr-dir only applies"):
        load_eval_samples(parse("--model", "m", "--task", "chartqa", "--data", "d", "--ocr-dir", "o"))
    with pytest.raises(EvalError, match="needs --data"):
        load_eval_samples(parse("--model", "m", "--task", "docvqa", "--synthetic", "2", "--ocr-dir", "o"))
    with pytest.raises(LynxError, match="not found"):
        load_eval_samples(parse("--model", "m", "--task", "docvqa", "--data", str(tmp_path / "missing.json")))
    assert len(load_eval_samples(parse("--model", "m", "--task", "chartqa", "--synthetic", "9", "--limit", "4"))) == 4


def test_parse_routing_params() -> None:
    assert parse_routing_params(["alpha=3", "beta=0.5", "on=true", "name=fast", "s=a=b"]) == {
        "alpha": 3,
        "beta": 0.5,
        "on": True,
        "name": "fast",
        "s": "a=b",
    }
    with pytest.raises(RoutingConfigError, match="must look like NAME=VALUE"):
        parse_routing_params(["alpha"])
