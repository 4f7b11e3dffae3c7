"""Save then load gives the same model; every damaged or foreign file gives CheckpointError."""

from __future__ import annotations

import builtins
import io
import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from conftest import tiny_gpt, tiny_transformer
from model import CheckpointError, load_checkpoint, peek, save_checkpoint
from model.tokenizers import SymbolTokenizer


@pytest.mark.parametrize("make", [tiny_gpt, tiny_transformer])
@pytest.mark.parametrize("n_kv_heads", [4, 1])
def test_save_then_load_gives_identical_logits(tmp_path, make, n_kv_heads):
    model = make(n_kv_heads)
    path = save_checkpoint(tmp_path / "ckpt", model, meta={"steps": 3})
    loaded = load_checkpoint(path)
    assert not loaded.model.training
    assert loaded.config == model.config and loaded.meta["steps"] == 3
    assert loaded.meta["parameters"] == sum(p.numel() for p in model.parameters())
    ids = torch.randint(1, 11, (2, 5))
    if make is tiny_gpt:
        assert torch.equal(loaded.model(ids), model(ids))
    else:
        assert torch.equal(loaded.model(ids, ids), model(ids, ids))


def test_tied_weights_stay_tied(tmp_path):
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c", tiny_gpt()))
    assert loaded.model.lm_head.weight is loaded.model.decoder.embed.token.weight


def test_half_precision_is_cast_back(tmp_path):
    model = tiny_gpt()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c", model, dtype=torch.float16))
    assert loaded.model.lm_head.weight.dtype == torch.float32
    ids = torch.randint(0, 13, (1, 6))
    torch.testing.assert_close(loaded.model(ids), model(ids), atol=2e-2, rtol=0)


def test_existing_checkpoint_is_not_overwritten_without_asking(tmp_path):
    path = save_checkpoint(tmp_path / "c", tiny_gpt(), meta={"v": 1})
    with pytest.raises(CheckpointError, match="already exists"):
        save_checkpoint(path, tiny_gpt(), meta={"v": 2})
    assert load_checkpoint(path).meta["v"] == 1
    save_checkpoint(path, tiny_gpt(), meta={"v": 2}, overwrite=True)
    assert load_checkpoint(path).meta["v"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # no staging or backup left behind


@pytest.fixture
def good(tmp_path):
    return save_checkpoint(tmp_path / "good", tiny_gpt())


def expect_error(path, message):
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_missing_path(tmp_path):
    expect_error(tmp_path / "nope", "does not exist")


def test_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    expect_error(tmp_path / "empty", "empty directory")


def test_truncated_weights(good):
    data = (good / "model.safetensors").read_bytes()
    (good / "model.safetensors").write_bytes(data[: len(data) // 2])
    expect_error(good, "truncated or not a safetensors")


def test_random_bytes_weights(good):
    (good / "model.safetensors").write_bytes(torch.randint(0, 256, (5000,), dtype=torch.uint8).numpy().tobytes())
    expect_error(good, "truncated or not a safetensors")


def test_random_bytes_json(good):
    (good / "config.json").write_bytes(bytes(range(256)) * 4)
    expect_error(good, "not valid JSON")


def test_malformed_json(good):
    (good / "config.json").write_text('{"format": "transformer-playground", ', encoding="utf-8")
    expect_error(good, "not valid JSON")


def test_foreign_json(good):
    (good / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 768}), encoding="utf-8")
    expect_error(good, "not a Transformer Playground checkpoint")


def test_config_that_does_not_match_weights(good):
    document = json.loads((good / "config.json").read_text())
    document["config"]["d_model"] = 64
    (good / "config.json").write_text(json.dumps(document))
    expect_error(good, "shapes do not match")


def test_config_with_missing_layer(good):
    document = json.loads((good / "config.json").read_text())
    document["config"]["n_layers"] = 3
    (good / "config.json").write_text(json.dumps(document))
    expect_error(good, "missing")


def test_invalid_config_values(good):
    document = json.loads((good / "config.json").read_text())
    document["config"]["n_kv_heads"] = 3
    (good / "config.json").write_text(json.dumps(document))
    expect_error(good, "invalid")


class _Exploit:
    """Unpickling this creates a file: proof that a loader unpickled it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_file_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps(_Exploit(str(marker))))
    expect_error(path, "pickle")
    disguised = tmp_path / "weights.dat"
    disguised.write_bytes(pickle.dumps(_Exploit(str(marker))))
    expect_error(disguised, "pickle")
    assert not marker.exists()


def test_directory_of_only_pickles(tmp_path):
    folder = tmp_path / "torch_ckpt"
    folder.mkdir()
    torch.save(tiny_gpt().state_dict(), folder / "pytorch_model.bin")
    expect_error(folder, "only pickle files")


def test_loading_by_config_file_path(good):
    assert load_checkpoint(good / "config.json").config.d_model == 32


# ------------------------------------------------------------------ peek: the config without the weights


@pytest.mark.parametrize("make", [tiny_gpt, tiny_transformer])
def test_peek_says_what_load_says(tmp_path, make):
    path = save_checkpoint(tmp_path / "c", make(2), SymbolTokenizer.of_size(6), meta={"steps": 3, "task": None})
    peeked, loaded = peek(path), load_checkpoint(path)
    assert peeked.config == loaded.config and peeked.meta == loaded.meta and peeked.path == loaded.path
    assert peeked.architecture == loaded.architecture and peeked.name == loaded.name == "c"
    assert peeked.tokenizer.to_dict() == loaded.tokenizer.to_dict()
    assert peek(path / "config.json").config == peeked.config


def test_peek_never_opens_the_weights(good, monkeypatch):
    (good / "model.safetensors").write_bytes(b"\x00" * 100)  # corrupt: load refuses it, peek does not read it
    opened = []

    def spy(file, *args, **kwargs):
        opened.append(Path(file).name if isinstance(file, (str, os.PathLike)) else file)
        return real_open(file, *args, **kwargs)

    real_open = io.open
    monkeypatch.setattr(io, "open", spy)
    monkeypatch.setattr(builtins, "open", spy)
    assert peek(good).config.d_model == 32
    monkeypatch.undo()
    assert "config.json" in opened and "model.safetensors" not in opened
    expect_error(good, "truncated or not a safetensors")


def test_peek_works_without_weights(good):
    (good / "model.safetensors").unlink()
    assert peek(good).architecture == "gpt"


def damage(kind: str, good: Path) -> Path:
    """A checkpoint (or path) wrong in one way the config alone shows."""
    document = json.loads((good / "config.json").read_text())
    if kind == "pickle file":
        (good.parent / "model.pt").write_bytes(pickle.dumps({"a": 1}))
        return good.parent / "model.pt"
    if kind == "only pickles":
        folder = good.parent / "torch_ckpt"
        folder.mkdir()
        torch.save({"w": torch.zeros(2)}, folder / "pytorch_model.bin")
        return folder
    changes = {
        "foreign": {"model_type": "gpt2", "n_embd": 768},
        "newer format": document | {"format_version": 99},
        "unknown architecture": document | {"architecture": "mamba"},
        "invalid config": document | {"config": document["config"] | {"n_kv_heads": 3}},
        "meta not an object": document | {"meta": [1, 2]},
        "tokenizer too large": document | {"tokenizer": SymbolTokenizer.of_size(40).to_dict()},
    }
    if kind == "malformed":
        (good / "config.json").write_text('{"format": "transformer-playground", ', encoding="utf-8")
    else:
        (good / "config.json").write_text(json.dumps(changes[kind]), encoding="utf-8")
    return good


@pytest.mark.parametrize("kind", ["pickle file", "only pickles", "foreign", "malformed", "newer format",
                                  "unknown architecture", "invalid config", "meta not an object",
                                  "tokenizer too large"])
def test_peek_refuses_what_load_refuses_in_the_same_words(good, kind):
    path = damage(kind, good)
    with pytest.raises(CheckpointError) as peeked:
        peek(path)
    with pytest.raises(CheckpointError) as loaded:
        load_checkpoint(path)
    assert str(peeked.value) == str(loaded.value)
