"""Continuous batching, paged KV cache, preemption and abort (CPU, float32, greedy)."""

from __future__ import annotations

import random

import pytest

from lynx import LLM, SamplingParams
from lynx.errors import RequestError


@pytest.fixture(scope="module")
def moe_path(checkpoint_factory):
    return checkpoint_factory("qwen3-moe")


def alone(path, prompt, max_tokens):
    llm = LLM(str(path), device="cpu", dtype="float32")
    return llm.generate([prompt], SamplingParams(max_tokens=max_tokens, temperature=0, ignore_eos=True))[0].token_ids


def test_staggered_arrivals_small_cache_match_solo_runs(moe_path):
    rng = random.Random(0)
    reqs = [([rng.randrange(1, 400) for _ in range(rng.randint(1, 30))], rng.randint(1, 12)) for _ in range(10)]
    expected = [alone(moe_path, p, n) for p, n in reqs]
    # 12 blocks of 4 tokens: far too few for all requests at once -> queueing + preemption.
    llm = LLM(str(moe_path), device="cpu", dtype="float32", block_size=4, num_kv_blocks=12, max_num_seqs=6)
    engine = llm.engine
    arrivals = {0: [0, 1, 2], 2: [3, 4], 3: [5], 7: [6, 7, 8], 12: [9]}
    ids = {}
    outputs = {}
    step = 0
    while len(outputs) < len(reqs):
        for i in arrivals.get(step, []):
            p, n = reqs[i]
            ids[engine.add_request(p, SamplingParams(max_tokens=n, temperature=0, ignore_eos=True))] = i
        for out in engine.step():
            if out.finished:
                outputs[ids[out.request_id]] = out
        step += 1
        assert step < 1000
    assert [outputs[i].token_ids for i in range(len(reqs))] == expected
    assert engine.scheduler.num_preemptions > 0
    assert engine.blocks.num_free == engine.blocks.num_blocks  # everything returned
    assert any(o.metrics.num_preemptions for o in outputs.values())


def test_request_joins_running_batch_without_waiting(moe_path):
    llm = LLM(str(moe_path), device="cpu", dtype="float32")
    e = llm.engine
    a = e.add_request([1, 2, 3], SamplingParams(max_tokens=20, temperature=0, ignore_eos=True))
    for _ in range(3):
        e.step()
    b = e.add_request([4, 5], SamplingParams(max_tokens=3, temperature=0, ignore_eos=True))
    e.step()  # prefill of b while a is mid-decode
    assert e.step_stats[-1].phase == "prefill" and e.step_stats[-1].batch_size == 1
    n = len(e.step_stats)
    finished = {}
    for _ in range(2):  # with overlapped decode a step's statistics arrive with its tokens, one step later
        finished.update((o.request_id, o) for o in e.step() if o.finished)
    assert (e.step_stats[n].phase, e.step_stats[n].batch_size) == ("decode", 2)
    while e.has_unfinished():
        for o in e.step():
            if o.finished:
                finished[o.request_id] = o
    assert finished[b].finish_reason == "length" and len(finished[b].token_ids) == 3
    assert len(finished[a].token_ids) == 20


def test_abort_frees_blocks(moe_path):
    llm = LLM(str(moe_path), device="cpu", dtype="float32", block_size=4, num_kv_blocks=32)
    e = llm.engine
    r1 = e.add_request(list(range(1, 20)), SamplingParams(max_tokens=50, ignore_eos=True))
    r2 = e.add_request(list(range(1, 10)), SamplingParams(max_tokens=50, ignore_eos=True))
    e.step()
    e.step()
    assert e.blocks.num_free < 32
    assert e.abort(r1)
    assert not e.abort("no-such-request")
    assert e.blocks.num_free == 32 - len(e.sequences[r2].block_table)
    e.abort(r2)
    assert e.blocks.num_free == 32 and not e.has_unfinished()


def test_prompt_longer_than_context_is_rejected(moe_path):
    llm = LLM(str(moe_path), device="cpu", dtype="float32", max_model_len=16)
    with pytest.raises(RequestError, match="prompt has 16 tokens but the context holds 16"):
        llm.generate([list(range(1, 17))])
    # The engine is still usable and lost nothing.
    out = llm.generate([[1, 2, 3]], SamplingParams(max_tokens=4, temperature=0, ignore_eos=True))
    assert len(out[0].token_ids) == 4


def test_generation_stops_at_max_model_len(moe_path):
    llm = LLM(str(moe_path), device="cpu", dtype="float32", max_model_len=12)
    out = llm.generate([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]], SamplingParams(max_tokens=50, ignore_eos=True))[0]
    assert len(out.token_ids) == 2 and out.finish_reason == "length"


def test_request_that_can_never_fit_is_rejected(moe_path):
    llm = LLM(str(moe_path), device="cpu", dtype="float32", block_size=4, num_kv_blocks=2)
    with pytest.raises(RequestError, match="needs 3 KV-cache blocks but the cache has only 2"):
        llm.generate([list(range(1, 10))])


def test_bad_prompts(moe_path):
    llm = LLM(str(moe_path), device="cpu", dtype="float32")
    with pytest.raises(RequestError, match="empty"):
        llm.generate([[]])
    with pytest.raises(RequestError, match="token ids must be integers in"):
        llm.generate([[10**9]])
    with pytest.raises(RequestError, match="2 sampling params for 1 prompts"):
        llm.generate([[1]], [SamplingParams(), SamplingParams()])
    assert not llm.engine.has_unfinished()


def test_metrics_and_step_stats(moe_path):
    llm = LLM(str(moe_path), routing="lynx", device="cpu", dtype="float32")
    outs = llm.generate([[1, 2, 3], [4, 5, 6, 7]], SamplingParams(max_tokens=5, temperature=0, ignore_eos=True))
    for o in outs:
        m = o.metrics
        assert m.ttft is not None and m.ttft >= 0 and m.tpot is not None and m.tpot >= 0
        assert m.num_output_tokens == 5
    steps = llm.step_stats()
    assert steps[0].phase == "prefill" and steps[0].num_tokens == 7
    decode = [s for s in steps if s.phase == "decode"]
    assert len(decode) == 4 and all(s.batch_size == 2 for s in decode)
    n_moe = llm.engine.model_config.num_moe_layers
    assert all(len(s.experts_after) == n_moe for s in steps)
    assert all(a <= b for s in decode for a, b in zip(s.experts_after, s.experts_before))
    stats = llm.stats()
    assert stats["num_decode_steps"] == 4 and stats["routing"] == "lynx"
    assert set(stats["routing_params"]) == {"alpha", "beta"}


def test_set_routing_switches_policy_without_reload(moe_path):
    llm = LLM(str(moe_path), device="cpu", dtype="float32")
    prompts = [[i + 2, i + 3] for i in range(8)]
    params = SamplingParams(max_tokens=4, temperature=0, ignore_eos=True)
    llm.generate(prompts, params)
    assert llm.stats()["mean_active_experts_after"] == llm.stats()["mean_active_experts_before"]
    llm.set_routing("lynx", alpha=2.0)
    llm.reset_stats()
    llm.generate(prompts, params)
    stats = llm.stats()
    assert stats["routing"] == "lynx" and stats["routing_params"]["alpha"] == 2.0 and "beta" in stats["routing_params"]
    assert stats["mean_active_experts_after"] <= stats["mean_active_experts_before"]
    with pytest.raises(Exception, match="k0"):
        llm.set_routing("lynx", k0=3)


@pytest.mark.parametrize("overlap", [False, True])
def test_request_outgrowing_the_whole_cache_ends_with_length(moe_path, overlap):
    # 4 blocks of 4 tokens: a request that would need more than the whole cache can never be
    # recomputed after preemption; it must end ("length") instead of looping forever.
    llm = LLM(str(moe_path), device="cpu", dtype="float32", block_size=4, num_kv_blocks=4, overlap_decode=overlap)
    out = llm.generate([[1, 2, 3, 4, 5, 6], [7, 8]], SamplingParams(max_tokens=100, temperature=0, ignore_eos=True))
    assert all(o.finish_reason == "length" for o in out)
    # 16 cached tokens + the one sampled from the last of them
    assert max(len(o.prompt_token_ids) + len(o.token_ids) for o in out) == 17
    assert len(out[0].token_ids) >= 1 and len(out[1].token_ids) >= 1
    assert llm.engine.blocks.num_free == 4
