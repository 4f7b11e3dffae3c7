"""The training engine and the command line: learning, stopping, determinism, refusals."""

from __future__ import annotations

import threading

import pytest
import torch

from model import GPT, GPTConfig
from model.config import ConfigError
from model.recipes import RECIPES, build_model
from model.tasks import task_from_dict
from model.train import main as train_main
from model.training import TrainConfig, check_run, learning_rate, reached, train

FAST = TrainConfig(steps=150, batch_size=64, lr=3e-3, warmup_steps=10, eval_every=0, eval_sequences=300, device="cpu")


def small_reversal_model(task, seed=0, **overrides):
    settings = dict(d_model=64, n_heads=4, n_layers=2, pos_encoding="learned")
    settings.update(overrides)
    return build_model(task, task.make_tokenizer(), settings, seed=seed)


def test_short_reversal_run_learns_the_second_half():
    task = task_from_dict({"name": "reversal", "n": 6, "vocab": 8})
    model = small_reversal_model(task)
    events = list(train(model, task, FAST))
    final = events[-1]
    assert final.kind == "done" and final.step == 150
    assert final.metrics["second_half_accuracy"] >= 0.95
    assert abs(final.metrics["first_half_accuracy"] - 1 / 8) < 0.1
    assert final.tokens_per_s > 0 and not model.training


def test_runs_are_deterministic_under_a_seed():
    task = task_from_dict({"name": "reversal", "n": 4, "vocab": 6})
    config = TrainConfig(steps=15, batch_size=16, eval_every=0, eval_sequences=20, device="cpu")
    losses = [[e.loss for e in train(small_reversal_model(task), task, config) if e.kind == "step"] for _ in range(2)]
    assert losses[0] == losses[1]


def test_stop_ends_the_run_between_steps_and_keeps_the_model():
    task = task_from_dict({"name": "reversal", "n": 4, "vocab": 6})
    model = small_reversal_model(task)
    before = model.lm_head.weight.detach().clone()
    stop = threading.Event()
    events = []
    for event in train(model, task, TrainConfig(steps=1000, batch_size=8, eval_every=0, eval_sequences=20, device="cpu"), stop):
        events.append(event)
        if event.step == 5:
            stop.set()
    assert events[-1].kind == "stopped" and events[-1].step == 5
    assert "second_half_accuracy" in events[-1].metrics
    assert not torch.equal(before, model.lm_head.weight)


def test_a_stop_rule_ends_the_run_at_the_first_evaluation_that_reaches_it():
    task = task_from_dict({"name": "reversal", "n": 4, "vocab": 6})
    config = TrainConfig(steps=300, batch_size=32, eval_every=2, eval_sequences=100, device="cpu",
                         stop_metric="second_half_accuracy", stop_at=0.99)
    model = small_reversal_model(task)
    events = list(train(model, task, config))
    final = events[-1]
    assert final.kind == "learned" and final.step < 300 and final.step % 2 == 0 and not model.training
    assert final.metrics["second_half_accuracy"] >= 0.99
    assert all(e.metrics["second_half_accuracy"] < 0.99 for e in events[:-1] if e.kind == "eval")
    assert [e.kind for e in events].count("learned") == 1
    assert reached({"exact_match": 0.995}, TrainConfig(stop_metric="exact_match", stop_at=0.99))
    assert not reached({"exact_match": 0.995}, TrainConfig())  # no rule: every step runs
    assert not reached({}, TrainConfig(stop_metric="exact_match"))
    with pytest.raises(ConfigError, match="eval_every"):
        TrainConfig(stop_metric="exact_match", eval_every=0)


def test_learning_rate_warms_up_then_decays():
    config = TrainConfig(steps=100, lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    assert learning_rate(0, config) == pytest.approx(1e-4)
    assert learning_rate(9, config) == pytest.approx(1e-3)
    assert learning_rate(100, config) == pytest.approx(1e-4)
    assert learning_rate(50, config) < learning_rate(20, config)


@pytest.mark.parametrize("settings,message", [(dict(steps=0), "steps"), (dict(lr=0), "lr"), (dict(batch_size=0), "batch_size")])
def test_absurd_train_settings_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**settings)


def test_sequences_longer_than_the_context_are_refused():
    config = GPTConfig(vocab_size=10, max_len=8, d_model=32, n_heads=4, n_layers=1)
    with pytest.raises(ConfigError, match="max_len"):
        check_run(config, TrainConfig(), required_len=16)


def test_too_large_a_model_is_refused():
    config = GPTConfig(vocab_size=50000, max_len=1024, d_model=2048, n_heads=16, n_layers=24)
    with pytest.raises(ConfigError, match="parameters"):
        check_run(config, TrainConfig(), required_len=512)


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--d-model", "130"], "divisible by n_heads"),
        (["--n-kv-heads", "3"], "must divide n_heads"),
        (["--steps", "0"], "steps must be at least 1"),
        (["--max-len", "8"], "max_len"),
        (["--d-model", "4096", "--n-heads", "16", "--n-layers", "48"], "parameters"),
    ],
)
def test_cli_refuses_bad_settings(tmp_path, capsys, flags, message):
    code = train_main(["--task", "reversal", "--out", str(tmp_path / "x"), *flags])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_trains_and_saves_a_checkpoint(tmp_path, capsys):
    out = tmp_path / "rev"
    code = train_main(["--task", "reversal", "--steps", "30", "--d-model", "32", "--n", "4", "--out", str(out)])
    assert code == 0
    from model import load_checkpoint

    loaded = load_checkpoint(out)
    assert loaded.meta["task"] == {"name": "reversal", "n": 4, "vocab": 10}
    assert loaded.meta["command"].startswith("python -m model.train --task reversal")
    assert loaded.meta["steps"] == 30
    assert train_main(["--task", "reversal", "--steps", "1", "--out", str(out)]) == 2  # no overwrite without --force
    assert "already exists" in capsys.readouterr().err


def test_recipes_build_valid_models():
    for name, recipe in RECIPES.items():
        if name == "shakespeare":
            continue  # its tokenizer needs the prepared corpus; covered by the shipped-checkpoint tests
        task = task_from_dict(recipe.task)
        model = build_model(task, task.make_tokenizer(), recipe.model)
        check_run(model.config, recipe.train, task.required_max_len)
        assert isinstance(model, GPT) == (task.model_kind == "gpt")


def test_auto_precision_follows_the_measured_rule(monkeypatch):
    """float32 for small CPU steps, bf16 above the threshold on a bf16-capable CPU, explicit choices kept."""
    import model.training as training

    cpu = torch.device("cpu")
    monkeypatch.setattr(training, "cpu_has_fast_bf16", lambda: True)
    reversal = TrainConfig(batch_size=64)
    assert training.training_precision(reversal, d_model=128, seq_len=15, device=cpu) == "float32"
    assert training.training_precision(TrainConfig(batch_size=32), 128, 64, cpu) == "bfloat16"
    assert training.training_precision(TrainConfig(batch_size=32, precision="float32"), 128, 64, cpu) == "float32"
    assert training.training_precision(TrainConfig(batch_size=1, precision="bfloat16"), 8, 2, cpu) == "bfloat16"
    monkeypatch.setattr(training, "cpu_has_fast_bf16", lambda: False)  # emulated bf16 is slower: never automatic
    assert training.training_precision(TrainConfig(batch_size=32), 128, 64, cpu) == "float32"
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="float8")


def test_bf16_autocast_training_learns_and_keeps_float32_weights():
    task = task_from_dict({"name": "reversal", "n": 6, "vocab": 8})
    model = small_reversal_model(task)
    config = TrainConfig(steps=150, batch_size=64, lr=3e-3, warmup_steps=10, eval_every=0, eval_sequences=300,
                         device="cpu", precision="bfloat16")
    final = list(train(model, task, config))[-1]
    assert final.metrics["second_half_accuracy"] >= 0.9
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.slow
def test_compiled_training_matches_eager_training():
    """torch.compile is an option, not another model: the same run gives the same losses."""
    task = task_from_dict({"name": "reversal", "n": 4, "vocab": 6})
    config = TrainConfig(steps=4, batch_size=8, eval_every=0, eval_sequences=20, device="cpu")
    eager = [e.loss for e in train(small_reversal_model(task, d_model=32, n_layers=1), task, config) if e.kind == "step"]
    compiled_config = TrainConfig(**{**config.to_dict(), "compile": True})
    compiled = [e.loss for e in train(small_reversal_model(task, d_model=32, n_layers=1), task, compiled_config)
                if e.kind == "step"]
    assert compiled == pytest.approx(eager, rel=1e-4, abs=1e-5)
