"""``lynx eval``: document-QA accuracy of a model under a routing policy.

The CLI mounts :func:`add_eval_arguments` on its ``eval`` sub-parser and calls
:func:`run_eval`. A run loads DocVQA/ChartQA samples (official files or the synthetic
``test`` stream), prompts the model in batches of ``--batch-size`` (batch composition
matters for batch-aware routing, so the size is recorded), scores the first line of each
answer with the task's metric and writes ``predictions.jsonl`` and ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from lynx.errors import LynxError, RequestError
from lynx.eval.prompts import build_prompt, postprocess
from lynx.eval.scoring import aggregate, metric_name, score
from lynx.routing import parse_routing_args
from lynx.workloads import DocQASample, generate_chartqa, generate_docvqa, load_chartqa, load_docvqa

TASKS = ("docvqa", "chartqa")
ROUTING_POLICIES = ("topk", "lynx", "oea")
#: Default generation budget per task (docs/models-and-workloads.md: lmms-eval settings).
DEFAULT_MAX_TOKENS = {"docvqa": 128, "chartqa": 16}


class EvalError(LynxError, ValueError):
    """Inconsistent ``lynx eval`` options or an unusable evaluation set."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``lynx eval`` options to ``parser`` and return it."""
    parser.add_argument("--model", required=True, help="checkpoint directory or built-in model name")
    parser.add_argument(
        "--task", required=True, choices=TASKS, help="benchmark: docvqa (ANLS) or chartqa (relaxed accuracy)"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data",
        metavar="PATH",
        help="docvqa: annotation JSON (e.g. val_v1.0_withQT.json); chartqa: split directory (e.g. test/)",
    )
    source.add_argument(
        "--synthetic",
        type=_positive_int,
        metavar="N",
        help="evaluate on N synthetic questions (held-out 'test' stream of --seed)",
    )
    parser.add_argument("--ocr-dir", metavar="DIR", help="docvqa: directory of per-page OCR JSON used as text context")
    parser.add_argument(
        "--routing", default="topk", choices=ROUTING_POLICIES, help="expert-selection policy (default: topk)"
    )
    parser.add_argument(
        "--routing-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="routing policy parameter (value parsed as JSON, else kept as a string); repeatable",
    )
    parser.add_argument(
        "--batch-size", type=_positive_int, default=16, help="prompts per generate() call (default: 16)"
    )
    parser.add_argument(
        "--max-tokens",
        type=_positive_int,
        default=None,
        help="new tokens per answer (default: docvqa 128, chartqa 16, as lmms-eval)",
    )
    parser.add_argument("--limit", type=_positive_int, default=None, help="evaluate only the first N questions")
    parser.add_argument(
        "--output",
        metavar="DIR",
        default=None,
        help="where to write predictions.jsonl and summary.json (default: out/eval/<task>-<routing>-<time>)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic evaluation set (default: 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--dtype", default="auto", help="weight/activation dtype (default: auto)")
    parser.add_argument(
        "--max-model-len",
        type=_positive_int,
        default=None,
        help="context length limit passed to the engine (default: the model's)",
    )
    return parser


def load_eval_samples(args: argparse.Namespace) -> list[DocQASample]:
    """The evaluation set selected by ``--task``, ``--data``/``--synthetic``, ``--ocr-dir``, ``--limit``."""
    if args.ocr_dir and args.task != "docvqa":
        raise EvalError("--ocr-dir only applies to --task docvqa")
    if args.ocr_dir and not args.data:
        raise EvalError("--ocr-dir needs --data (synthetic documents carry their own text)")
    if args.synthetic:
        generate = generate_docvqa if args.task == "docvqa" else generate_chartqa
        n = min(args.synthetic, args.limit) if args.limit else args.synthetic
        return list(generate(n, seed=args.seed, split="test"))
    samples = load_docvqa(args.data, args.ocr_dir) if args.task == "docvqa" else load_chartqa(args.data)
    samples = samples[: args.limit] if args.limit else samples
    if not samples:
        raise EvalError(f"{args.data}: no questions to evaluate")
    return samples


def _generate_batch(llm: Any, prompts: list[str], sampling: Any) -> list[Any]:
    """Outputs in prompt order; a prompt the engine refuses becomes its :class:`RequestError`.

    The engine validates a whole batch before running it, so one over-long document would
    fail the batch: retry its prompts one by one and keep the others' answers.
    """
    try:
        return list(llm.generate(prompts, sampling))
    except RequestError as e:
        if len(prompts) == 1:
            return [e]
    outs: list[Any] = []
    for prompt in prompts:
        try:
            outs.append(llm.generate([prompt], sampling)[0])
        except RequestError as e:
            outs.append(e)
    return outs


def run_eval(args: argparse.Namespace, llm: Any = None) -> dict[str, Any]:
    """Run the evaluation described by ``args``; write the result files; return the summary.

    ``llm`` replaces the engine (anything with ``generate(prompts, sampling_params)``
    returning objects with ``.text`` and ``.token_ids`` in prompt order, and optionally
    ``stats()``); by default ``lynx.LLM`` is built from ``--model``/``--routing``.
    """
    started = time.perf_counter()
    samples = load_eval_samples(args)
    routing_params = parse_routing_args(args.routing_param)
    max_tokens = args.max_tokens or DEFAULT_MAX_TOKENS[args.task]
    # Imported here so loading datasets and scoring never pays for (or breaks on) the engine.
    from lynx import SamplingParams

    if llm is None:
        from lynx import LLM

        engine_options = {"max_model_len": args.max_model_len} if getattr(args, "max_model_len", None) else {}
        llm = LLM(
            model=args.model,
            routing=args.routing,
            device=args.device,
            dtype=args.dtype,
            **engine_options,
            **routing_params,
        )
    sampling = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    out_dir = (
        Path(args.output)
        if args.output
        else Path("out/eval") / f"{args.task}-{args.routing}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    out_dir.mkdir(parents=True, exist_ok=True)

    records: list[tuple[tuple[str, ...], float]] = []
    failed: list[dict[str, str]] = []
    prompt_tokens: int | None = 0
    generated_tokens, generation_time = 0, 0.0
    with (
        open(out_dir / "predictions.jsonl", "w", encoding="utf-8") as pred_file,
        tqdm(total=len(samples), desc=f"eval {args.task} ({args.routing})", unit="q") as bar,
    ):
        for start in range(0, len(samples), args.batch_size):
            batch = samples[start : start + args.batch_size]
            t0 = time.perf_counter()
            outputs = _generate_batch(llm, [build_prompt(s) for s in batch], sampling)
            generation_time += time.perf_counter() - t0
            if len(outputs) != len(batch):
                raise RuntimeError(f"engine returned {len(outputs)} outputs for {len(batch)} prompts")
            for sample, out in zip(batch, outputs):
                if isinstance(out, RequestError):  # e.g. the document is longer than the context
                    records.append((sample.groups(), 0.0))
                    failed.append({"id": sample.id, "error": str(out)})
                    pred_file.write(json.dumps({"id": sample.id, "question": sample.question, "prediction": None,
                                                "answers": sample.answers, "score": 0.0, "subset": sample.subset,
                                                "error": str(out)}, ensure_ascii=False) + "\n")
                    continue
                prediction = postprocess(out.text)
                value = score(sample.task, prediction, sample.answers)
                records.append((sample.groups(), value))
                generated_tokens += len(out.token_ids)
                ids = getattr(out, "prompt_token_ids", None)
                prompt_tokens = prompt_tokens + len(ids) if prompt_tokens is not None and ids is not None else None
                row = {
                    "id": sample.id,
                    "question": sample.question,
                    "prediction": prediction,
                    "answers": sample.answers,
                    "score": value,
                    "subset": sample.subset,
                    "raw": out.text,
                }
                pred_file.write(json.dumps(row, ensure_ascii=False) + "\n")
            bar.update(len(batch))

    result = aggregate(records)
    stats = llm.stats() if callable(getattr(llm, "stats", None)) else None
    summary = {
        "task": args.task,
        "metric": metric_name(args.task),
        "model": str(args.model),
        "data": str(args.data) if args.data else f"synthetic:{args.synthetic}",
        "ocr_dir": str(args.ocr_dir) if args.ocr_dir else None,
        "seed": args.seed,
        "routing": args.routing,
        "routing_params": routing_params,
        "batch_size": args.batch_size,
        "max_tokens": max_tokens,
        "n": result.n,
        # Requests the engine refused (scored 0, listed so a reader can see why).
        "num_failed": len(failed),
        "failed": failed[:20],
        "overall": result.overall,
        "subsets": result.subsets,
        # default=str keeps an engine's odd stat type (numpy scalar, tensor) from failing the run.
        "routing_stats": json.loads(json.dumps(stats, default=str)) if stats is not None else None,
        "tokens": {"prompt": prompt_tokens, "generated": generated_tokens},
        "generation_time_s": generation_time,
        "generated_tokens_per_s": generated_tokens / generation_time if generation_time > 0 else None,
        "wall_time_s": time.perf_counter() - started,
        "output_dir": str(out_dir),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    _print_summary(summary, sys.stdout)
    return summary


def _print_summary(summary: dict[str, Any], stream: Any) -> None:
    print(
        f"{summary['task']} {summary['metric']}: {summary['overall']:.4f} over {summary['n']} questions "
        f"(routing {summary['routing']}, batch size {summary['batch_size']})",
        file=stream,
    )
    for name, sub in summary["subsets"].items():
        print(f"  {name}: {sub['score']:.4f} (n={sub['n']})", file=stream)
    print(f"wrote {summary['output_dir']}/predictions.jsonl and summary.json", file=stream)
