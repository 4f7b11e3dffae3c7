"""Every shipped checkpoint loads and meets its task's bar on fresh data (not numbers read from meta)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model import load_checkpoint

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


@pytest.mark.slow
@pytest.mark.parametrize("name", shipped("shakespeare"))
def test_shakespeare_checkpoints_beat_the_bigram_baseline(name):
    loaded = load_checkpoint(ROOT / name)
    task = loaded.task
    assert task.make_tokenizer().tokens == loaded.tokenizer.tokens  # same vocabulary as at training
    metrics = task.evaluate(loaded.model, num_sequences=300, seed=FRESH_SEED)
    assert metrics["val_loss"] < metrics["bigram_val_loss"] - 0.1
    sample = loaded.run("to be or not to be")
    assert len(sample.split()) >= 5
