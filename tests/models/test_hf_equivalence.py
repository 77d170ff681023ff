"""Greedy tokens from Lynx equal transformers' own generate on the same checkpoint.

Lynx runs several prompts of different lengths together in one batch (prefill, then
batched decode over the paged KV cache); transformers runs each prompt alone. Float32
on CPU, so any mismatch is a real difference in the model, not rounding.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, GenerationConfig

from lynx import LLM, SamplingParams
from lynx.testing.checkpoints import VARIANTS as VARIANT_CONFIGS

NEW_TOKENS = 8
PROMPTS = [
    [5, 17, 42, 99, 3, 250, 7],
    [11, 12],
    [300, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6],
    [77],
]

# Every architecture plus the config variants that exercise loader/attention details
# (tied embeddings, dense layers in MoE models, sliding windows, rope scalings, biases),
# and a sharded checkpoint.
VARIANTS = [*VARIANT_CONFIGS, "qwen3-moe-sharded", "qwen2-moe-sharded"]


def hf_greedy(model_dir, prompt: list[int], n: int) -> list[int]:
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    # Generate exactly n tokens with no EOS handling at all (min_new_tokens would instead
    # suppress the EOS logit and change the argmax; the model's own config would stop early).
    model.generation_config.eos_token_id = None
    gen = GenerationConfig(do_sample=False, max_new_tokens=n, eos_token_id=None, pad_token_id=None)
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), generation_config=gen, attention_mask=torch.ones(1, len(prompt), dtype=torch.long))
    tokens = out[0, len(prompt):].tolist()
    assert len(tokens) == n, "transformers stopped early"
    return tokens


@pytest.fixture(scope="module")
def hf_reference(checkpoint_factory):
    cache: dict[str, list[list[int]]] = {}

    def get(variant: str) -> list[list[int]]:
        if variant not in cache:
            path = checkpoint_factory(variant)
            cache[variant] = [hf_greedy(path, p, NEW_TOKENS) for p in PROMPTS]
        return cache[variant]

    return get


@pytest.mark.parametrize("variant", VARIANTS)
def test_batched_greedy_matches_transformers(variant, checkpoint_factory, hf_reference):
    path = checkpoint_factory(variant)
    llm = LLM(str(path), device="cpu", dtype="float32")
    outs = llm.generate(PROMPTS, SamplingParams(max_tokens=NEW_TOKENS, temperature=0, ignore_eos=True))
    assert [o.token_ids for o in outs] == hf_reference(variant)


@pytest.mark.parametrize("variant", ["qwen3-moe", "qwen2-moe", "mixtral", "olmoe"])
@pytest.mark.parametrize("policy", ["lynx", "oea"])
def test_single_sequence_batch_aware_routing_equals_topk(variant, policy, checkpoint_factory, hf_reference):
    """A batch of one token routes exactly as top-k, so a lone request is unchanged."""
    path = checkpoint_factory(variant)
    llm = LLM(str(path), routing=policy, device="cpu", dtype="float32")
    params = SamplingParams(max_tokens=NEW_TOKENS, temperature=0, ignore_eos=True)
    for prompt, expected in zip(PROMPTS, hf_reference(variant)):
        assert llm.generate([prompt], params)[0].token_ids == expected
    stats = llm.stats()
    assert stats["mean_active_experts_after"] == stats["mean_active_experts_before"]


def test_batch_aware_routing_reduces_active_experts(checkpoint_factory):
    path = checkpoint_factory("qwen3-moe")
    prompts = [[i + 3, (7 * i) % 200 + 1, 9] for i in range(16)]
    params = SamplingParams(max_tokens=6, temperature=0, ignore_eos=True)
    topk = LLM(str(path), device="cpu", dtype="float32")
    topk.generate(prompts, params)
    lynx = LLM(str(path), routing="lynx", device="cpu", dtype="float32")
    lynx.generate(prompts, params)
    a, b = topk.stats(), lynx.stats()
    assert a["mean_active_experts_after"] == pytest.approx(a["mean_active_experts_before"])
    assert b["mean_active_experts_after"] < b["mean_active_experts_before"]
    assert b["num_decode_steps"] > 0
