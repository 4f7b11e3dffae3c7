"""Choosing the next token: top-p against hand-computed numbers, suppressed ids, and the callers' defaults."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import tiny_gpt, tiny_transformer

from explain.generation import next_token_choice, settings_from_controls
from model import load_checkpoint
from model.generation_trace import GenerationSession, distribution, generate_all
from model.sampling import (
    SamplingSettings,
    keep_mask,
    never_generated,
    next_token_probabilities,
    sample_next,
    top_p_keep,
)
from model.tokenizers import CharTokenizer, SymbolTokenizer, WordTokenizer

# Five tokens whose probabilities at temperature 1 are, by id: 0.10, 0.50, 0.05, 0.20, 0.15.
# Sorted: 0.50 (id 1), 0.20 (id 3), 0.15 (id 4), 0.10 (id 0), 0.05 (id 2).
ROOT = Path(__file__).resolve().parent.parent
PROBS = torch.tensor([[0.10, 0.50, 0.05, 0.20, 0.15]])
LOGITS = PROBS.log()


@pytest.mark.parametrize("top_p,expected", [
    # cumulative 0.50 < 0.6, 0.70 >= 0.6: keep ids 1, 3 -> 0.5/0.7, 0.2/0.7
    (0.6, [0.0, 0.5 / 0.7, 0.0, 0.2 / 0.7, 0.0]),  # = 0, 0.714286, 0, 0.285714, 0
    # 0.70 reaches 0.7 exactly: still two tokens
    (0.7, [0.0, 0.714286, 0.0, 0.285714, 0.0]),
    # 0.70 < 0.8, 0.85 >= 0.8: keep ids 1, 3, 4 -> 0.5/0.85, 0.2/0.85, 0.15/0.85
    (0.8, [0.0, 0.588235, 0.0, 0.235294, 0.176471]),
    # the most likely token alone already passes 0.01: always at least one token
    (0.01, [0.0, 1.0, 0.0, 0.0, 0.0]),
    # p = 1: nothing is cut
    (1.0, [0.10, 0.50, 0.05, 0.20, 0.15]),
])
def test_top_p_keeps_the_fewest_likely_tokens_reaching_p(top_p, expected):
    probs = next_token_probabilities(LOGITS, 1.0, top_p=top_p)
    torch.testing.assert_close(probs, torch.tensor([expected]), atol=1e-6, rtol=0)


def test_top_p_after_temperature_and_top_k_by_hand():
    # temperature 2: p ~ sqrt(p) -> 0.7071, 0.4472, 0.3873, 0.3162, 0.2236 (sum 2.0814), i.e. sorted
    # 0.3397, 0.2149, 0.1861, 0.1519, 0.1074; top-p 0.6: 0.3397 + 0.2149 = 0.5546 < 0.6, + 0.1861 = 0.7407:
    # three kept, renormalised 0.3397/0.7407 = 0.4587, 0.2149/0.7407 = 0.2901, 0.1861/0.7407 = 0.2512
    probs = next_token_probabilities(LOGITS, 2.0, top_p=0.6)
    torch.testing.assert_close(probs, torch.tensor([[0.0, 0.4587, 0.0, 0.2901, 0.2512]]), atol=1e-4, rtol=0)
    # top-k 2 first: 0.5/0.7 = 0.714 and 0.2/0.7 = 0.286; 0.714 < 0.8, so top-p 0.8 keeps both
    probs = next_token_probabilities(LOGITS, 1.0, 2, top_p=0.8)
    torch.testing.assert_close(probs, torch.tensor([[0.0, 0.714286, 0.0, 0.285714, 0.0]]), atol=1e-6, rtol=0)


def test_suppressed_ids_get_exactly_zero_and_the_rest_is_renormalised():
    # without id 1 (0.5) the rest is 0.1, 0.05, 0.2, 0.15 over 0.5: 0.2, 0.1, 0.4, 0.3;
    # top-p 0.6 then keeps 0.4 and 0.3 (0.7 >= 0.6): 0.4/0.7 = 0.571429, 0.3/0.7 = 0.428571
    plain = next_token_probabilities(LOGITS, 1.0, suppress_ids=[1])
    torch.testing.assert_close(plain, torch.tensor([[0.2, 0.0, 0.1, 0.4, 0.3]]), atol=1e-6, rtol=0)
    assert plain[0, 1].item() == 0.0
    cut = next_token_probabilities(LOGITS, 1.0, top_p=0.6, suppress_ids=[1])
    torch.testing.assert_close(cut, torch.tensor([[0.0, 0.0, 0.0, 0.571429, 0.428571]]), atol=1e-6, rtol=0)
    assert sample_next(LOGITS, 0.0, suppress_ids=[1]).item() == 3  # greedy takes the best that is left
    assert sample_next(LOGITS, 0.0).item() == 1
    generator = torch.Generator().manual_seed(0)
    draws = sample_next(LOGITS.expand(500, 5), 5.0, generator=generator, suppress_ids=[1, 3])
    assert set(draws.flatten().tolist()) == {0, 2, 4}


def test_bad_settings_say_what_is_wrong():
    with pytest.raises(ValueError, match="top_p"):
        next_token_probabilities(LOGITS, 1.0, top_p=0.0)
    with pytest.raises(ValueError, match="top_p"):
        top_p_keep(PROBS, 1.5)
    with pytest.raises(ValueError, match="every token"):
        next_token_probabilities(LOGITS, 1.0, suppress_ids=range(5))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        sample_next(LOGITS, 0.0, suppress_ids=[7])
    with pytest.raises(ValueError, match="top_k"):
        SamplingSettings(1.0, top_k=0)


def test_keep_mask_and_settings_in_words():
    assert keep_mask(LOGITS, 0.0).tolist() == [[False, True, False, False, False]]  # greedy: the argmax only
    assert keep_mask(LOGITS, 1.0, 3, top_p=0.6).tolist() == [[False, True, False, True, False]]
    settings = SamplingSettings(0.8, 20, 0.95, (0,), seed=0)
    assert settings.describe(["<unk>", "a"]) == (
        "sampled at temperature 0.8, top-k 20, top-p 0.95, seed 0; never generated: <unk>")
    assert SamplingSettings().describe().startswith("greedy")
    assert SamplingSettings(0.0, 5, 0.5).effective == SamplingSettings()  # greedy: the cuts change nothing


def test_never_generated_names_unk_pad_and_start_but_not_the_end():
    chars = CharTokenizer("abc")
    assert never_generated(chars) == (chars.pad_id, chars.bos_id)
    words = WordTokenizer(["a", "b"])
    assert never_generated(words) == (words.unk_id,)
    assert never_generated(SymbolTokenizer(["1", "2"])) == ()


@pytest.mark.parametrize("n_kv_heads", [4, 1])
@pytest.mark.parametrize("temperature,top_k,top_p", [(0.0, None, None), (1.0, None, 0.7), (1.3, 5, 0.9)])
def test_cached_generation_equals_uncached_with_top_p_and_suppression(n_kv_heads, temperature, top_k, top_p):
    model = tiny_gpt(n_kv_heads)
    idx = torch.randint(0, 13, (3, 4))
    suppressed = (0, 1, 2)
    runs = [model.generate(idx, 15, temperature, top_k, use_cache=use, generator=torch.Generator().manual_seed(1),
                           top_p=top_p, suppress_ids=suppressed) for use in (True, False)]
    assert torch.equal(runs[0], runs[1])
    assert not set(runs[0][:, 4:].flatten().tolist()) & set(suppressed)


def test_encoder_decoder_greedy_never_chooses_suppressed_ids():
    model = tiny_transformer()
    src = torch.randint(1, 15, (2, 6))
    plain = model.generate(src, 1, 2, 10)
    banned = sorted(set(plain[:, 1:].flatten().tolist()) - {2})[:2]  # ids it chose on its own (2 ends the output)
    assert banned
    runs = [model.generate(src, 1, 2, 10, use_cache=use, suppress_ids=banned) for use in (True, False)]
    assert torch.equal(runs[0], runs[1])
    assert not set(runs[0][:, 1:].flatten().tolist()) & set(banned)


def test_session_steps_with_top_p_and_suppression_keep_their_logits():
    model = tiny_gpt()
    session = GenerationSession(model, [3, 1, 4], time_repeats=1)
    steps = generate_all(session, 6, 1.2, None, 0.8, (5, 6))
    for step in steps:
        assert step.chosen not in (5, 6) and step.probabilities[[5, 6]].sum().item() == 0.0
        assert step.suppress_ids == (5, 6) and step.top_p == 0.8
        torch.testing.assert_close(distribution(step.logits, 1.2, None, 0.8, (5, 6)), step.probabilities)
        assert step.same_token and step.uncached_max_diff < 1e-5
    vocabulary = tuple(f"t{i}" for i in range(13))
    choice = next_token_choice(steps[-1], SamplingSettings(1.2, None, 0.8, (5, 6)), vocabulary)
    assert not choice.changed and choice.chosen_kept and choice.vocab_size == 13
    torch.testing.assert_close(choice.drawn, steps[-1].probabilities)
    top1 = next_token_choice(steps[-1], SamplingSettings(1.0, 1, None, (5, 6)), vocabulary)
    assert top1.kept_count == 1 and top1.changed and top1.title.endswith("the 1 kept of 13 tokens")
    assert math.isclose(top1.drawn.sum().item(), 1.0, rel_tol=1e-6)


def test_controls_to_settings():
    words = WordTokenizer(["a", "b"])
    assert settings_from_controls(0.0, 0, 1.0, True, words) == SamplingSettings(0.0, None, None, (words.unk_id,))
    assert settings_from_controls(0.7, 5, 0.9, False, words) == SamplingSettings(0.7, 5, 0.9, ())


SHAKESPEARE = [name for name in ("shakespeare-mha", "shakespeare-mqa") if (ROOT / "checkpoints" / name).is_dir()]
PROMPTS = ("ROMEO", "To be, or not to be", "KING HENRY", "Good morrow", "What light")


@pytest.mark.slow
@pytest.mark.parametrize("name", SHAKESPEARE)
def test_default_shakespeare_generation_never_writes_unk(name):
    checkpoint = load_checkpoint(ROOT / "checkpoints" / name)
    tokenizer, model = checkpoint.tokenizer, checkpoint.model
    unk = tokenizer.id_to_token(tokenizer.unk_id)
    for prompt in PROMPTS:
        written = checkpoint.run(prompt)  # the task's run() at its defaults
        assert written.strip() and unk not in written, (prompt, written)
        idx = torch.tensor([tokenizer.encode(prompt)])
        greedy = model.generate(idx, 20, suppress_ids=never_generated(tokenizer))  # the KV page's default
        assert tokenizer.unk_id not in greedy[0, idx.shape[1]:].tolist()
        sampled = [model.generate(idx, 20, 0.8, 20, use_cache=use, generator=torch.Generator().manual_seed(0),
                                  top_p=0.95, suppress_ids=never_generated(tokenizer)) for use in (True, False)]
        assert torch.equal(sampled[0], sampled[1])
