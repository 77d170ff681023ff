"""Overlapped decode (step n+1 launched before step n's tokens are read) against the
synchronous engine: the same tokens, the same finish reasons, nothing lost or leaked.

CPU float32; on the CPU the launch is synchronous, but the code path is the GPU's: input
ids of pending tokens are gathered on the device from the previous step's rows.
"""

from __future__ import annotations

import random

import pytest

from lynx import LLM, SamplingParams
from lynx.engine.sequence import PENDING


@pytest.fixture(scope="module")
def moe_path(checkpoint_factory):
    return checkpoint_factory("qwen3-moe")


def run_staggered(path, reqs, overlap, routing="topk", **engine):
    """Requests ``(prompt, params)`` arriving over the first steps; outputs by index."""
    llm = LLM(str(path), routing=routing, device="cpu", dtype="float32", overlap_decode=overlap, **engine)
    e = llm.engine
    ids, outputs, step = {}, {}, 0
    while len(outputs) < len(reqs):
        for i in range(len(reqs)):
            if i % 4 == step and i not in ids.values():  # four arrival waves
                ids[e.add_request(reqs[i][0], reqs[i][1])] = i
        for out in e.step():
            if out.finished:
                assert ids[out.request_id] not in outputs, "a request finished twice"
                outputs[ids[out.request_id]] = out
        step += 1
        assert step < 2000
    assert not e.has_unfinished()
    assert e.step() == []  # collects a step still in flight: discarded rows give no output
    assert e.blocks.num_free == e.blocks.num_blocks
    return [outputs[i] for i in range(len(reqs))], e


def random_requests(seed, n, stop_token_ids=(), sampled=False):
    rng = random.Random(seed)
    reqs = []
    for i in range(n):
        prompt = [rng.randrange(1, 400) for _ in range(rng.randint(1, 20))]
        params = SamplingParams(
            max_tokens=rng.randint(1, 14), temperature=0.9 if sampled and i % 2 else 0.0, seed=i,
            stop_token_ids=list(stop_token_ids), ignore_eos=True,
        )
        reqs.append((prompt, params))
    return reqs


def test_overlap_matches_sync_with_preemption_and_sampling(moe_path):
    reqs = random_requests(0, 10, sampled=True)
    small = dict(block_size=4, num_kv_blocks=10, max_num_seqs=5)
    sync, sync_engine = run_staggered(moe_path, reqs, overlap=False, **small)
    over, engine = run_staggered(moe_path, reqs, overlap=True, **small)
    assert [o.token_ids for o in over] == [o.token_ids for o in sync]
    assert [o.finish_reason for o in over] == [o.finish_reason for o in sync]
    assert engine.scheduler.num_preemptions > 0  # pending tokens survived preemption
    # a request whose in-flight token is its last gives up its blocks and seat at once,
    # as in the synchronous loop: the same preemptions, the same batches
    assert engine.scheduler.num_preemptions == sync_engine.scheduler.num_preemptions
    assert decode_stats(engine) == decode_stats(sync_engine)


def test_length_limited_requests_batch_as_in_the_synchronous_loop(moe_path):
    # max_num_seqs below the number of requests: a request finishing on its length frees
    # its seat for the next prefill at the same step as without overlap, so even the
    # batch-aware policies see the same batches and produce the same tokens.
    reqs = random_requests(5, 9)
    for routing in ("lynx", "oea"):
        sync, sync_engine = run_staggered(moe_path, reqs, overlap=False, routing=routing, max_num_seqs=3)
        over, engine = run_staggered(moe_path, reqs, overlap=True, routing=routing, max_num_seqs=3)
        assert [o.token_ids for o in over] == [o.token_ids for o in sync], routing
        assert decode_stats(engine) == decode_stats(sync_engine), routing


def test_overlap_stop_tokens_discard_the_extra_row(moe_path):
    # Pick stop ids that really occur mid-generation, so sequences stop early (unknown to
    # the host when it launches the next step, which then carries a discarded row).
    reqs = random_requests(1, 8)
    free, _ = run_staggered(moe_path, reqs, overlap=False)
    stops = {o.token_ids[2] for o in free if len(o.token_ids) > 3}
    assert stops
    reqs = random_requests(1, 8, stop_token_ids=sorted(stops))
    reqs.append(([3, 1, 4], SamplingParams(max_tokens=30, temperature=0, ignore_eos=True)))  # outlives the others
    sync, _ = run_staggered(moe_path, reqs, overlap=False)
    over, _ = run_staggered(moe_path, reqs, overlap=True)
    assert [o.token_ids for o in over] == [o.token_ids for o in sync]
    assert [o.finish_reason for o in over] == [o.finish_reason for o in sync]
    assert any(o.finish_reason == "stop" for o in over)
    assert all(PENDING not in o.token_ids for o in over)


def test_overlap_matches_sync_under_batch_aware_routing(moe_path):
    # Length-limited requests leave no discarded rows, so even LYNX (whose choices depend on
    # the whole batch) sees the same batches and produces the same tokens.
    reqs = random_requests(2, 7)
    sync, _ = run_staggered(moe_path, reqs, overlap=False, routing="lynx")
    over, _ = run_staggered(moe_path, reqs, overlap=True, routing="lynx")
    assert [o.token_ids for o in over] == [o.token_ids for o in sync]


def test_overlap_respects_max_model_len(moe_path):
    llm = LLM(str(moe_path), device="cpu", dtype="float32", max_model_len=12, overlap_decode=True)
    out = llm.generate([[1, 2, 3, 4, 5], [7, 8]], SamplingParams(max_tokens=50, temperature=0, ignore_eos=True))
    assert [len(o.prompt_token_ids) + len(o.token_ids) for o in out] == [12, 12]
    assert all(o.finish_reason == "length" for o in out)


def test_abort_while_a_step_is_in_flight(moe_path):
    llm = LLM(str(moe_path), device="cpu", dtype="float32", block_size=4, num_kv_blocks=32, overlap_decode=True)
    e = llm.engine
    keep = e.add_request([1, 2, 3], SamplingParams(max_tokens=8, temperature=0, ignore_eos=True))
    gone = e.add_request([4, 5, 6], SamplingParams(max_tokens=8, temperature=0, ignore_eos=True))
    e.step()  # prefill
    e.step()  # decode launched, nothing collected yet
    assert e.sequences[gone].num_pending == 1
    assert e.abort(gone)
    assert e.sequences[gone].num_pending == 0 and PENDING not in e.sequences[gone].token_ids
    finished = {}
    while e.has_unfinished():
        for o in e.step():
            assert o.request_id != gone, "an aborted request produced output"
            finished[o.request_id] = o
    ref = LLM(str(moe_path), device="cpu", dtype="float32").generate(
        [[1, 2, 3]], SamplingParams(max_tokens=8, temperature=0, ignore_eos=True))[0]
    assert finished[keep].token_ids == ref.token_ids
    e.step()
    assert e.blocks.num_free == 32


def test_set_routing_mid_run_keeps_collected_tokens(moe_path):
    llm = LLM(str(moe_path), device="cpu", dtype="float32", overlap_decode=True)
    e = llm.engine
    rid = e.add_request([1, 2, 3], SamplingParams(max_tokens=6, temperature=0, ignore_eos=True))
    e.step()
    e.step()  # a decode step in flight
    llm.set_routing("lynx")  # collects it before the switch
    assert e.sequences[rid].num_pending == 0 and len(e.sequences[rid].output_token_ids) == 2
    outs = []
    while e.has_unfinished():
        outs += e.step()
    assert outs[-1].finished and len(outs[-1].token_ids) == 6
    assert len(outs) == 5  # tokens 2..6 -- the one collected by set_routing is not dropped


def decode_stats(engine):
    return [(s.batch_size, s.experts_before, s.experts_after) for s in engine.step_stats if s.phase == "decode"]


@pytest.mark.parametrize("routing", ["lynx", "oea"])
def test_stopped_rows_have_no_say_in_batch_aware_routing(moe_path, routing):
    # A request that stops on a token has a row in the next (already launched) step; the
    # device must drop it, or its vote would change the others' experts and tokens.
    reqs = random_requests(3, 8)
    free, _ = run_staggered(moe_path, reqs, overlap=False, routing=routing)
    stops = sorted({o.token_ids[1] for o in free if len(o.token_ids) > 3})
    reqs = random_requests(3, 8, stop_token_ids=stops)
    reqs.append(([3, 1, 4], SamplingParams(max_tokens=30, temperature=0, ignore_eos=True)))
    sync, sync_engine = run_staggered(moe_path, reqs, overlap=False, routing=routing)
    over, over_engine = run_staggered(moe_path, reqs, overlap=True, routing=routing)
    assert sum(o.finish_reason == "stop" for o in sync) >= 2
    assert [o.token_ids for o in over] == [o.token_ids for o in sync]
    assert [o.finish_reason for o in over] == [o.finish_reason for o in sync]
    # the discarded rows count neither in the batch size nor in the expert counts
    assert decode_stats(over_engine) == decode_stats(sync_engine)


def test_stop_strings_collect_before_launching(moe_path):
    llm = LLM(str(moe_path), device="cpu", dtype="float32")
    prompts = ["hello there", "the cat sat", "one two three four"]
    free = llm.generate(prompts, SamplingParams(max_tokens=12, temperature=0))
    stop = next(o.text[3:5] for o in free if len(o.text) > 6)
    params = SamplingParams(max_tokens=12, temperature=0, stop=[stop])
    outs = {}
    for overlap in (False, True):
        run = LLM(str(moe_path), routing="lynx", device="cpu", dtype="float32", overlap_decode=overlap)
        outs[overlap] = [(o.token_ids, o.text, o.finish_reason) for o in run.generate(prompts, params)]
    assert outs[True] == outs[False]
    assert any(reason == "stop" for _, _, reason in outs[True])


def test_no_step_left_in_flight_between_runs(moe_path):
    import time

    llm = LLM(str(moe_path), device="cpu", dtype="float32", overlap_decode=True)
    reqs = random_requests(4, 4)
    free = llm.generate([p for p, _ in reqs], SamplingParams(max_tokens=6, temperature=0, ignore_eos=True))
    stop = SamplingParams(max_tokens=6, temperature=0, stop_token_ids=[free[0].token_ids[1]], ignore_eos=True)
    llm.generate([p for p, _ in reqs], stop)  # request 0 stops early: a discarded row is in flight at the end
    assert llm.engine._inflight is None
    time.sleep(0.3)
    llm.reset_stats()
    llm.generate([p for p, _ in reqs], stop)
    decode = [s for s in llm.step_stats() if s.phase == "decode"]
    assert decode and max(s.duration_s for s in decode) < 0.25  # no step counted across the pause
