"""Step-by-step generation records: prefill vs decode, the cache's contents and size, and the timing check."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_gpt, tiny_transformer

from model import causal_mask, load_checkpoint, trace
from model.decode_speed import SpeedSetup, measure_decode_speed
from model.generation_trace import GenerationSession, distribution, generate_all, session_for
from model.kv_math import cache_bytes

PROMPT = [3, 1, 4, 1, 5, 9]


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_prefill_then_decode_steps(n_kv_heads):
    model = tiny_gpt(n_kv_heads)
    session = GenerationSession(model, PROMPT, time_repeats=1)
    steps = generate_all(session, 5)
    prefill, decodes = steps[0], steps[1:]
    assert prefill.kind == "prefill" and prefill.input_ids == tuple(PROMPT) and prefill.start == 0
    assert torch.equal(prefill.mask, causal_mask(len(PROMPT)))
    assert prefill.layers[0].weights.shape == (4, 6, 6)
    assert (prefill.layers[0].weights[:, ~causal_mask(6)] == 0).all()
    for k, step in enumerate(decodes, start=1):
        assert step.kind == "decode" and step.mask is None and step.query_length == 1
        assert step.input_ids == (steps[k - 1].chosen,) and step.start == len(PROMPT) + k - 1
        assert step.layers[1].weights.shape == (4, 1, len(PROMPT) + k)
        torch.testing.assert_close(step.layers[1].weights.sum(-1), torch.ones(4, 1))


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_greedy_tokens_equal_generate_and_the_uncached_run(n_kv_heads):
    model = tiny_gpt(n_kv_heads)
    session = GenerationSession(model, PROMPT, time_repeats=1)
    steps = generate_all(session, 8)
    expected = model.generate(torch.tensor([PROMPT]), 8, use_cache=False)[0].tolist()
    assert session.tokens == expected and session.generated == expected[len(PROMPT):]
    assert all(s.same_token for s in steps) and max(s.uncached_max_diff for s in steps) < 1e-5
    assert all(s.cached_seconds > 0 and s.uncached_seconds > 0 for s in steps)


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_cache_holds_hkv_heads_and_matches_a_full_pass(n_kv_heads):
    model = tiny_gpt(n_kv_heads)
    session = GenerationSession(model, PROMPT, time_repeats=1)
    steps = generate_all(session, 4)
    length = len(PROMPT) + 3  # the last chosen token is not fed yet
    d_head = model.config.d_head
    assert session.cache_shape() == (1, n_kv_heads, length, d_head)
    full = trace(model, torch.tensor([session.tokens[:length]]))
    for layer in range(2):
        torch.testing.assert_close(session.cache_keys(layer), full.decoder.layers[layer].self_attention.k[0],
                                   atol=1e-5, rtol=0)
        torch.testing.assert_close(session.cache_values(layer), full.decoder.layers[layer].self_attention.v[0],
                                   atol=1e-5, rtol=0)
    for step in steps:
        assert step.cache_bytes == cache_bytes(2, n_kv_heads, d_head, step.cache_length, 1, 4)
        assert step.cross_cache_bytes == 0


def test_prefill_attention_equals_the_full_trace():
    model = tiny_gpt(2)
    step = GenerationSession(model, PROMPT, time_repeats=1).step()
    full = trace(model, torch.tensor([PROMPT]))
    torch.testing.assert_close(step.layers[0].weights, full.decoder.layers[0].self_attention.weights[0])
    torch.testing.assert_close(step.layers[0].scaled_scores, full.decoder.layers[0].self_attention.scaled_scores[0])
    torch.testing.assert_close(step.probabilities, torch.softmax(full.logits[0, -1], -1))


def test_generation_stops_at_the_context():
    model = tiny_gpt(1, max_len=8)
    session = GenerationSession(model, PROMPT, time_repeats=1)
    steps = generate_all(session, 10)
    assert len(steps) == 2 and session.finished and session.fed == 7 and len(session.tokens) == 8
    with pytest.raises(ValueError, match="finished"):
        session.step()


def test_sampling_is_seeded_and_respects_top_k():
    model = tiny_gpt(2)
    runs = []
    for _ in range(2):
        session = GenerationSession(model, PROMPT, seed=7, time_repeats=1)
        runs.append([s.chosen for s in generate_all(session, 6, temperature=1.5, top_k=3)])
        for step in session.steps:
            assert int((step.probabilities > 0).sum()) == 3 and step.probabilities[step.chosen] > 0
    assert runs[0] == runs[1]
    assert torch.equal(distribution(torch.tensor([0.0, 1.0]), 0.0), torch.softmax(torch.tensor([0.0, 1.0]), -1))


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="empty"):
        GenerationSession(tiny_gpt(), [])
    with pytest.raises(ValueError, match="context"):
        GenerationSession(tiny_gpt(max_len=4), PROMPT)
    with pytest.raises(TypeError):
        GenerationSession(torch.nn.Linear(2, 2), PROMPT)
    with pytest.raises(ValueError, match="eval mode"):
        GenerationSession(tiny_gpt().train(), PROMPT).step()
    with pytest.raises(ValueError, match="start_id"):
        GenerationSession(tiny_transformer(), PROMPT)


@pytest.mark.parametrize("n_kv_heads", [4, 1])
def test_encoder_decoder_session(n_kv_heads):
    model = tiny_transformer(n_kv_heads)
    src = [5, 6, 7, 8, 9]
    session = GenerationSession(model, src, start_id=1, end_id=2, time_repeats=1)
    steps = generate_all(session, 6)
    expected = model.generate(torch.tensor([src]), start_id=1, end_id=2, max_new_tokens=6)[0].tolist()
    assert session.tokens[: len(expected)] == expected
    assert steps[0].kind == "prefill" and steps[0].mask is None and steps[0].input_ids == (1,)
    assert steps[0].layers[0].cross_weights.shape == (4, 1, len(src))
    d_head = model.config.d_head
    assert all(s.cross_cache_bytes == cache_bytes(2, n_kv_heads, d_head, len(src), 1, 4) for s in steps)
    assert all(s.cache_bytes == cache_bytes(2, n_kv_heads, d_head, s.cache_length, 1, 4) for s in steps)
    assert all(s.same_token for s in steps)


def test_session_for_a_shipped_checkpoint():
    checkpoint = load_checkpoint("checkpoints/reversal-gqa")
    session = session_for(checkpoint, checkpoint.tokenizer.encode("3 1 4 1 5 9 2 6"))
    generate_all(session, 20)
    assert checkpoint.tokenizer.decode(session.generated) == "6 2 9 5 1 4 1 3"
    assert session.cache_shape() == (1, 2, 15, 32) and session.finished


def test_decode_speed_points():
    setup = SpeedSetup(d_model=32, n_heads=4, n_layers=1, kv_heads=(4, 2, 1), contexts=(4, 8), batch=2,
                       new_tokens=2, repeats=1)
    progress = list(measure_decode_speed(setup))
    assert [p.done for p in progress] == list(range(1, 7)) and progress[-1].total == 6
    points = progress[-1].points
    assert len(points) == setup.points == 6
    assert [p.variant for p in points[::2]] == ["MHA", "GQA", "MQA"]
    for p in points:
        assert p.tokens_per_s > 0
        assert p.cache_bytes == cache_bytes(1, p.n_kv_heads, 8, p.context + setup.new_tokens, 2, 4)
    with pytest.raises(ValueError):
        SpeedSetup(n_heads=8, kv_heads=(3,))
