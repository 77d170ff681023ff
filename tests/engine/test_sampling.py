"""Sampling parameters, the on-device sampler and stop conditions."""

from __future__ import annotations

import pytest
import torch

from lynx import LLM, SamplingParams
from lynx.engine.sampler import SamplingBatch, hash_uniform, sample
from lynx.errors import SamplingParamsError


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_tokens": 0}, "max_tokens must be an integer >= 1"),
        ({"temperature": -1.0}, "temperature must be a finite number >= 0"),
        ({"temperature": float("nan")}, "temperature must be a finite number"),
        ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
        ({"top_p": 1.5}, r"top_p must be in \(0, 1\]"),
        ({"top_k": -1}, "top_k must be an integer >= 0"),
        ({"seed": "x"}, "seed must be an integer"),
        ({"stop": [""]}, "stop must be a non-empty string"),
        ({"min_tokens": 5, "max_tokens": 2}, r"min_tokens must be an integer in \[0, max_tokens\]"),
    ],
)
def test_invalid_sampling_params(kwargs, message):
    with pytest.raises(SamplingParamsError, match=message):
        SamplingParams(**kwargs)


def batch(b, temperature=1.0, top_p=1.0, top_k=0, seed=0, pos=0):
    return SamplingBatch(
        temperature=torch.full((b,), temperature), top_p=torch.full((b,), top_p),
        top_k=torch.full((b,), top_k, dtype=torch.int64), seeds=torch.arange(b, dtype=torch.int64) + seed,
        positions=torch.full((b,), pos, dtype=torch.int64), all_greedy=temperature == 0,
        any_filter=top_k > 0 or top_p < 1,
    )


def test_hash_uniform_is_uniform_and_reproducible():
    seeds = torch.arange(64, dtype=torch.int64)
    u = hash_uniform(seeds, torch.zeros(64, dtype=torch.int64), torch.arange(4096).expand(64, 4096))
    assert 0 < u.min() and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.01 and abs(u.var().item() - 1 / 12) < 0.005
    hist = torch.histc(u, bins=10, min=0, max=1) / u.numel()
    assert torch.allclose(hist, torch.full((10,), 0.1), atol=0.01)
    again = hash_uniform(seeds, torch.zeros(64, dtype=torch.int64), torch.arange(4096).expand(64, 4096))
    assert torch.equal(u, again)


def test_sampled_frequencies_follow_softmax():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5])
    n = 20000
    b = batch(n, temperature=0.7)
    tokens = sample(logits.expand(n, 5).clone(), b)
    freq = torch.bincount(tokens, minlength=5).float() / n
    expected = torch.softmax(logits / 0.7, dim=0)
    assert torch.allclose(freq, expected, atol=0.015)


def test_top_k_and_top_p_filters():
    logits = torch.tensor([3.0, 2.9, 0.0, -1.0]).expand(4000, 4).clone()
    assert set(sample(logits, batch(4000, top_k=2)).tolist()) == {0, 1}
    assert set(sample(logits, batch(4000, top_k=1)).tolist()) == {0}
    # p(0) ~ 0.49, p(1) ~ 0.45: top_p 0.3 keeps token 0 only, 0.6 keeps 0 and 1.
    assert set(sample(logits, batch(4000, top_p=0.3)).tolist()) == {0}
    assert set(sample(logits, batch(4000, top_p=0.6)).tolist()) == {0, 1}


def test_greedy_rows_mixed_with_sampled_rows():
    logits = torch.randn(8, 50)
    b = batch(8)
    b.temperature[::2] = 0
    tokens = sample(logits, b)
    assert torch.equal(tokens[::2], logits[::2].argmax(-1))


@pytest.fixture(scope="module")
def llm(checkpoint_factory):
    return LLM(str(checkpoint_factory("qwen3-moe")), device="cpu", dtype="float32")


def test_seeded_request_is_independent_of_its_batch(llm):
    p = SamplingParams(max_tokens=10, temperature=1.0, seed=1234, ignore_eos=True)
    alone = llm.generate([[5, 6, 7]], p)[0].token_ids
    crowd = llm.generate([[9, 9], [5, 6, 7], [1]], [SamplingParams(max_tokens=4, temperature=1.0), p,
                                                     SamplingParams(max_tokens=12, temperature=0.5)])
    assert crowd[1].token_ids == alone
    other = llm.generate([[5, 6, 7]], SamplingParams(max_tokens=10, temperature=1.0, seed=99, ignore_eos=True))
    assert other[0].token_ids != alone


def test_stop_strings_and_stop_token_ids(llm):
    greedy = SamplingParams(max_tokens=12, temperature=0, ignore_eos=True)
    full = llm.generate([[3, 4, 5]], greedy)[0]
    assert len(full.text) > 2
    cut = full.text[1:3]
    out = llm.generate([[3, 4, 5]], SamplingParams(max_tokens=12, temperature=0, ignore_eos=True, stop=[cut]))[0]
    assert out.finish_reason == "stop" and cut not in out.text and full.text.startswith(out.text)
    stop_id = full.token_ids[3]
    out = llm.generate([[3, 4, 5]], SamplingParams(max_tokens=12, temperature=0, ignore_eos=True,
                                                   stop_token_ids=[stop_id]))[0]
    assert out.finish_reason == "stop" and out.token_ids == full.token_ids[: full.token_ids.index(stop_id) + 1]


def test_eos_stops_unless_ignored(llm):
    greedy = SamplingParams(max_tokens=12, temperature=0, ignore_eos=True)
    full = llm.generate([[3, 4, 5]], greedy)[0]
    # Pretend the 3rd generated token is EOS.
    saved = llm.engine.eos_ids
    llm.engine.eos_ids = {full.token_ids[2]}
    try:
        out = llm.generate([[3, 4, 5]], SamplingParams(max_tokens=12, temperature=0))[0]
        assert out.finish_reason == "stop" and out.token_ids == full.token_ids[: full.token_ids.index(full.token_ids[2]) + 1]
        out = llm.generate([[3, 4, 5]], greedy)[0]
        assert out.token_ids == full.token_ids
    finally:
        llm.engine.eos_ids = saved
