"""Every shipped checkpoint loads and meets its task's bar on fresh data (not numbers read from meta)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from model import load_checkpoint
from model.recipes import RECIPES
from model.tasks.shakespeare import VAL_PLAYS
from model.tasks.shakespeare import _main as shakespeare_cli

ROOT = Path(__file__).resolve().parent.parent / "checkpoints"
SHIPPED = sorted(p.name for p in ROOT.iterdir() if (p / "config.json").is_file())
FRESH_SEED = 20261123  # not the seed any checkpoint was trained or evaluated with


def shipped(prefix: str) -> list[str]:
    return [name for name in SHIPPED if name.startswith(prefix)]


def test_the_shipped_set_is_complete_and_small():
    expected = {"reversal-mha", "reversal-gqa", "reversal-mqa", "reversal-rope", "reversal-mla", "dates",
                "shakespeare-mha", "shakespeare-mqa"}
    assert expected <= set(SHIPPED)
    total = sum(f.stat().st_size for f in ROOT.rglob("*") if f.is_file())
    assert total < 60 * 1024 * 1024


@pytest.mark.parametrize("name", SHIPPED)
def test_metadata_says_how_it_was_made(name):
    meta = load_checkpoint(ROOT / name).meta
    assert meta["command"].startswith("python -m model.train --task")
    assert meta["task"]["name"] in ("reversal", "dates", "shakespeare")
    assert meta["steps"] > 0 and meta["parameters"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", shipped("reversal"))
def test_reversal_checkpoints_reverse_and_guess_the_first_half(name):
    loaded = load_checkpoint(ROOT / name)
    metrics = loaded.task.evaluate(loaded.model, num_sequences=2000, seed=FRESH_SEED)
    assert metrics["second_half_accuracy"] >= 0.995
    assert abs(metrics["first_half_accuracy"] - metrics["chance"]) <= 0.05
    n = loaded.meta["task"]["n"]
    prompt = " ".join(str(i % loaded.meta["task"]["vocab"]) for i in range(3, 3 + n))
    assert loaded.run(prompt) == " ".join(reversed(prompt.split()))


def test_reversal_variants_differ_only_in_kv_heads():
    configs = {name: load_checkpoint(ROOT / name).config for name in ("reversal-mha", "reversal-gqa", "reversal-mqa")}
    assert sorted(c.n_kv_heads for c in configs.values()) == [1, 2, 4]
    assert len({(c.d_model, c.n_heads, c.n_layers, c.vocab_size) for c in configs.values()}) == 1


def test_reversal_rope_and_mla_are_what_their_names_say():
    mha, rope, mla = (load_checkpoint(ROOT / f"reversal-{kind}").config for kind in ("mha", "rope", "mla"))
    assert (rope.pos_encoding, rope.attention, rope.attention_variant) == ("rope", "standard", "MHA")
    assert (mla.pos_encoding, mla.attention_variant) == ("rope", "MLA")
    assert 0 < mla.kv_latent_dim + mla.mla_rope_dim < 2 * mla.n_heads * mla.d_head  # a smaller cache than MHA's
    assert len({(c.d_model, c.n_heads, c.n_layers, c.vocab_size) for c in (mha, rope, mla)}) == 1


@pytest.mark.slow
def test_dates_checkpoint_translates_dates():
    loaded = load_checkpoint(ROOT / "dates")
    assert loaded.run("25 december 2023") == "2023-12-25"
    assert loaded.run("  Monday, March 03, 1997 ") == "1997-03-03"
    metrics = loaded.task.evaluate(loaded.model, num_sequences=2000, seed=FRESH_SEED)
    assert metrics["exact_match"] >= 0.98
    with pytest.raises(ValueError, match="#"):
        loaded.run("25 december 2023 #")


# Issue 17: the vocabulary covers at least 92% of the held-out plays' running words, and the held-out
# loss is at least 15% below the add-k bigram baseline on the same vocabulary and tokens.
SHAKESPEARE_MIN_COVERAGE = 0.92
SHAKESPEARE_MAX_LOSS_VS_BIGRAM = 0.85


@pytest.mark.slow
@pytest.mark.parametrize("name", shipped("shakespeare"))
def test_shakespeare_checkpoints_cover_the_held_out_words_and_beat_the_bigram(name):
    loaded = load_checkpoint(ROOT / name)
    task = loaded.task
    assert task.val_plays == VAL_PLAYS and task.source == "corpus"
    assert task.make_tokenizer().tokens == loaded.tokenizer.tokens  # same vocabulary as at training
    metrics = task.evaluate(loaded.model, num_sequences=len(task.data.val))  # every held-out window
    assert metrics["num_sequences"] == len(task.data.val)
    assert metrics["val_word_coverage"] >= SHAKESPEARE_MIN_COVERAGE
    assert metrics["val_loss"] <= SHAKESPEARE_MAX_LOSS_VS_BIGRAM * metrics["bigram_val_loss"]


@pytest.mark.slow
@pytest.mark.parametrize("name", shipped("shakespeare"))
def test_shakespeare_checkpoints_continue_in_words(name):
    loaded = load_checkpoint(ROOT / name)
    for prompt in ("ROMEO", "to be or not to be"):
        sample = loaded.run(prompt)  # run()'s defaults: what the sidebar's "the model continues" line shows
        assert loaded.tokenizer.unk not in sample
        assert len(re.findall(r"[A-Za-z]+", sample)) >= 8


@pytest.mark.parametrize("name", shipped("shakespeare"))
def test_shakespeare_checkpoints_follow_the_recipe(name):
    """`python -m model.train --task shakespeare --n-kv-heads K` reproduces each: its settings are the recipe's."""
    loaded = load_checkpoint(ROOT / name)
    recipe = RECIPES["shakespeare"]
    meta = loaded.meta
    assert meta["task"] | recipe.task == meta["task"]
    assert meta["train"] == recipe.train.to_dict()
    n_kv_heads = loaded.config.n_kv_heads
    assert meta["command"] == (f"python -m model.train --task shakespeare --n-kv-heads {n_kv_heads} "
                               f"--out checkpoints/{name} --force --dtype float16")
    settings = {k: getattr(loaded.config, k) for k in recipe.model}
    assert settings == recipe.model | {"n_kv_heads": n_kv_heads}


@pytest.mark.slow
def test_the_readme_sampling_command_prints_the_prompt_and_its_continuation(capsys):
    name = shipped("shakespeare")[0]
    assert shakespeare_cli(["sample", "--checkpoint", str(ROOT / name), "--prompt", "ROMEO"]) == 0
    printed = capsys.readouterr().out
    loaded = load_checkpoint(ROOT / name)
    assert printed == "ROMEO" + loaded.run("ROMEO") + "\n"
