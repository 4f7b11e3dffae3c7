"""Checkpoints: a directory with safetensors weights and a JSON file, never a pickle.

    NAME/
      config.json        format + version, architecture, model config, tokenizer, meta
      model.safetensors  the weights (float32 unless a smaller dtype was asked for)

Loading never unpickles anything, whatever a file is called: `torch.load` can run
arbitrary code hidden in a pickle. Every way a checkpoint can be wrong (missing,
truncated, foreign, mismatched) raises CheckpointError with a message a user can act on.
`peek` reads and checks config.json alone, for lists of checkpoints: the same checks and messages.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .config import ConfigError, GPTConfig, TransformerConfig
from .gpt import GPT
from .transformer import Transformer

FORMAT = "transformer-playground"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
MAX_CONFIG_BYTES = 20 * 1024 * 1024  # a config.json larger than this is not one of ours
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt")
ARCHITECTURES = {"gpt": (GPT, GPTConfig), "transformer": (Transformer, TransformerConfig)}
Architecture = Literal["gpt", "transformer"]


class CheckpointError(Exception):
    """A checkpoint that cannot be loaded or saved; the message says why and what to do."""


@dataclass
class LoadedCheckpoint:
    """A loaded checkpoint: the model (eval mode), its tokenizer, config and metadata."""

    model: nn.Module
    tokenizer: Any
    config: GPTConfig | TransformerConfig
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else "unsaved"

    @property
    def architecture(self) -> str:
        return "gpt" if isinstance(self.model, GPT) else "transformer"

    @property
    def task(self):
        """The task object described by meta["task"], or None for a bare model."""
        if not self.meta.get("task"):
            return None
        from .tasks import task_from_dict  # tasks are optional for bare models

        return task_from_dict(self.meta["task"])

    def run(self, text: str) -> str:
        """What the model makes of `text`: the task's answer, or a greedy continuation."""
        task = self.task
        if task is not None:
            return task.run(self.model, self.tokenizer, text)
        if self.tokenizer is None:
            raise ValueError("this checkpoint has no tokenizer, so it cannot read text.")
        if not isinstance(self.model, GPT):
            raise ValueError("an encoder-decoder checkpoint needs a task in meta['task'] to run text.")
        ids = torch.tensor([self.tokenizer.encode(text)], dtype=torch.long)
        if ids.shape[1] == 0:
            raise ValueError("the input is empty.")
        room = self.config.max_len - ids.shape[1]
        if room <= 0:
            raise ValueError(f"the input has {ids.shape[1]} tokens; the model's context is {self.config.max_len}.")
        out = self.model.generate(ids, min(20, room))
        return self.tokenizer.decode(out[0, ids.shape[1]:].tolist())


@dataclass(frozen=True)
class CheckpointPeek:
    """What a checkpoint's config.json says, checked as load_checkpoint checks it, without its weights."""

    architecture: Architecture
    config: GPTConfig | TransformerConfig
    tokenizer: Any
    meta: dict
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def _architecture_of(model: nn.Module) -> str:
    for name, (cls, _) in ARCHITECTURES.items():
        if isinstance(model, cls):
            return name
    raise CheckpointError(f"cannot save a {type(model).__name__}; expected GPT or Transformer.")


def _tied_keys(model: nn.Module) -> list[str]:
    """State-dict keys that are the same tensor as an earlier key (weight tying): saved once."""
    seen: dict[int, str] = {}
    tied = []
    for key, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) in seen:
            tied.append(key)
        seen.setdefault(id(tensor), key)
    return tied


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    tokenizer=None,
    meta: dict | None = None,
    dtype: torch.dtype = torch.float32,
    overwrite: bool = False,
) -> Path:
    """Write `model` (and tokenizer, meta) as a checkpoint directory at `path`; returns it.

    The directory is written beside its final place and renamed into it, so a crash
    mid-save leaves any previous checkpoint there intact. An existing checkpoint is
    only replaced with overwrite=True. Any failure while writing (a full disk, no
    permission) raises CheckpointError saying the save failed and what was kept.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise CheckpointError(f"{target} already exists; choose another name or pass overwrite=True.")
    architecture = _architecture_of(model)
    tied = set(_tied_keys(model))
    weights = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items() if k not in tied}
    meta = dict(meta or {})
    meta.setdefault("parameters", sum(p.numel() for p in model.parameters()))
    meta.setdefault("saved_at", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "config": model.config.to_dict(),
        "tokenizer": tokenizer.to_dict() if tokenizer is not None else None,
        "meta": meta,
        "weights": {"file": WEIGHTS_FILE, "dtype": str(dtype).removeprefix("torch.")},
    }
    existed = target.exists()
    staging = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.saving-", dir=target.parent))
        save_file(weights, str(staging / WEIGHTS_FILE), metadata={"format": FORMAT})
        (staging / CONFIG_FILE).write_text(json.dumps(document, indent=2, sort_keys=True), encoding="utf-8")
        _replace_directory(staging, target)
    except BaseException as error:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, CheckpointError) or not isinstance(error, Exception):
            raise  # already explained, or Ctrl-C / exit: not a save failure to describe
        raise CheckpointError(_save_failed(target, existed, error)) from error
    return target


def _save_failed(target: Path, existed: bool, error: BaseException) -> str:
    """What to tell the user when writing `target` failed part-way (nothing of it was replaced)."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        reason = "the disk is full"
    elif isinstance(error, PermissionError):
        reason = f"no permission to write in {target.parent}"
    else:
        reason = str(error) or type(error).__name__
    kept = (f"the previous version of {target.name} is intact" if existed
            else f"nothing was written as {target.name}")
    return f"Saving {target.name} failed ({reason}); {kept}."


def _replace_directory(new: Path, target: Path) -> None:
    """Move `new` to `target`; an old `target` is moved aside first and removed only after.

    Both moves are renames within one folder, so each is atomic. If the second fails the
    old folder is moved back; only a hard crash between the two renames can leave it under
    its hidden backup name (`.NAME.old-PID`), which the picker does not list.
    """
    backup = None
    if target.exists():
        backup = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, backup)
    try:
        os.replace(new, target)
    except BaseException as error:
        if backup is not None:
            try:
                os.replace(backup, target)
            except OSError as restore_error:
                raise CheckpointError(
                    f"Saving {target.name} failed ({error}) and the previous version could not be put back "
                    f"({restore_error}); it is kept, complete, in {backup}."
                ) from error
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def checkpoint_folders(directory: str | os.PathLike) -> list[Path]:
    """The visible sub-folders of `directory`, sorted; [] when it cannot be listed.

    Hidden ones are a save or a delete in progress ('.NAME.saving-*', '.NAME.old-PID'): never listed.
    """
    try:
        return sorted(p for p in Path(directory).iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _looks_like_pickle(path: Path) -> bool:
    """torch.save writes a zip (PK..) or a raw pickle (0x80 protocol byte); we only peek at bytes."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _checkpoint_dir(path: Path) -> Path:
    """The checkpoint directory a user-given path points to, or CheckpointError saying why not."""
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: the path does not exist.")
    if path.is_file():
        if path.name in (CONFIG_FILE, WEIGHTS_FILE):
            return path.parent
        if _looks_like_pickle(path):
            raise CheckpointError(
                f"{path.name} looks like a PyTorch pickle (torch.save). Pickles are never loaded here, "
                f"because unpickling can run arbitrary code; save the model with save_checkpoint instead."
            )
        raise CheckpointError(f"{path} is a file; a checkpoint is a directory with {CONFIG_FILE} and {WEIGHTS_FILE}.")
    if not (path / CONFIG_FILE).is_file():
        entries = [p for p in path.iterdir() if not p.name.startswith(".")]
        if not entries:
            raise CheckpointError(f"{path} is an empty directory, not a checkpoint.")
        pickles = [p.name for p in entries if p.is_file() and _looks_like_pickle(p)]
        if pickles and len(pickles) == len(entries):
            raise CheckpointError(
                f"{path} holds only pickle files ({', '.join(sorted(pickles))}), which are never loaded "
                f"because unpickling can run arbitrary code. Convert them with save_checkpoint."
            )
        raise CheckpointError(f"{path} has no {CONFIG_FILE}; it is not a Transformer Playground checkpoint.")
    return path


def _read_document(directory: Path) -> dict:
    config_path = directory / CONFIG_FILE
    if config_path.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{config_path} is too large to be a checkpoint config.")
    try:
        document = json.loads(config_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{config_path} is not valid JSON ({error}); the file is corrupt.") from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"{config_path} is not a Transformer Playground checkpoint config (no 'format': '{FORMAT}').")
    version = document.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{config_path} has format_version {version!r}; this code reads up to {FORMAT_VERSION}.")
    if document.get("architecture") not in ARCHITECTURES:
        raise CheckpointError(f"unknown architecture {document.get('architecture')!r} in {config_path}.")
    return document


def _read_config(document: dict) -> GPTConfig | TransformerConfig:
    """The model config the document describes (validated by the config class)."""
    _, config_cls = ARCHITECTURES[document["architecture"]]
    config_data = document.get("config")
    if not isinstance(config_data, dict):
        raise CheckpointError("the checkpoint config has no 'config' object describing the model.")
    try:
        return config_cls.from_dict(config_data)
    except (ConfigError, TypeError, ValueError) as error:
        raise CheckpointError(f"the checkpoint's model config is invalid: {error}") from error


def _build_model(peeked: CheckpointPeek, max_parameters: int | None = None) -> nn.Module:
    """The model the config describes; with max_parameters, sized on the meta device first."""
    model_cls, _ = ARCHITECTURES[peeked.architecture]
    try:
        if max_parameters is not None:
            with torch.device("meta"):  # shapes only: no memory for a config that asks for billions
                count = sum(p.numel() for p in model_cls(peeked.config).parameters())
            if count > max_parameters:
                raise CheckpointError(
                    f"the config describes a model with {count:,} parameters, more than the weights file "
                    f"could hold ({max_parameters:,}): the config and the weights do not belong together."
                )
        return model_cls(peeked.config)
    except (ConfigError, TypeError, ValueError) as error:
        raise CheckpointError(f"the checkpoint's model config is invalid: {error}") from error


def _read_weights(directory: Path) -> dict[str, torch.Tensor]:
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise CheckpointError(f"{directory} has no {WEIGHTS_FILE}.")
    try:
        return load_file(str(weights_path))
    except Exception as error:  # safetensors raises its own error types for every kind of damage
        raise CheckpointError(f"{weights_path} is truncated or not a safetensors file ({error}).") from error


def _load_weights(model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Strict key and shape matching, then copy (cast back to float32 if stored smaller)."""
    tied = set(_tied_keys(model))
    expected = {k: v for k, v in model.state_dict().items() if k not in tied}
    missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"the weights do not match the config: missing {missing[:5]}, unexpected {unexpected[:5]}"
            f"{' ...' if len(missing) > 5 or len(unexpected) > 5 else ''}."
        )
    wrong = [f"{k}: file {tuple(weights[k].shape)} vs config {tuple(v.shape)}" for k, v in expected.items() if weights[k].shape != v.shape]
    if wrong:
        raise CheckpointError(f"the weights' shapes do not match the config: {'; '.join(wrong[:3])}.")
    if not all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point()):
        raise CheckpointError("the weights contain NaN or infinite values.")
    model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)


def _read_tokenizer(document: dict, config: GPTConfig | TransformerConfig):
    """The tokenizer, checked to produce only ids the model's embeddings have."""
    data = document.get("tokenizer")
    if data is None:
        return None
    from .tokenizers import tokenizer_from_dict

    try:
        tokenizer = tokenizer_from_dict(data)
    except (ValueError, TypeError, KeyError) as error:
        raise CheckpointError(f"the checkpoint's tokenizer is invalid: {error}") from error
    sizes = [config.vocab_size] if isinstance(config, GPTConfig) else [config.src_vocab_size, config.tgt_vocab_size]
    if tokenizer.vocab_size > min(sizes):
        raise CheckpointError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model's vocabulary "
                              f"has only {min(sizes)}: they do not belong together.")
    return tokenizer


def peek(path: str | os.PathLike) -> CheckpointPeek:
    """Architecture, config, tokenizer and meta of a checkpoint, from config.json alone.

    Cheap enough to run for every checkpoint a picker lists: the weights file is never opened.
    Raises the CheckpointError load_checkpoint would raise for the same config.
    """
    directory = _checkpoint_dir(Path(path))
    try:
        document = _read_document(directory)
    except OSError as error:
        raise CheckpointError(f"cannot read {directory / CONFIG_FILE}: {error}") from error
    config = _read_config(document)
    meta = document.get("meta") or {}
    if not isinstance(meta, dict):
        raise CheckpointError("the checkpoint's 'meta' must be a JSON object.")
    return CheckpointPeek(document["architecture"], config, _read_tokenizer(document, config), meta, directory)


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu", max_parameters: int | None = None
) -> LoadedCheckpoint:
    """Load a checkpoint directory (or its config.json / model.safetensors); model in eval mode.

    max_parameters (for files from strangers): refuse, before allocating it, a model larger than that.
    """
    peeked = peek(path)  # the config is checked in full before any memory goes to weights
    model = _build_model(peeked, max_parameters)
    _load_weights(model, _read_weights(peeked.path))
    return LoadedCheckpoint(model.to(device).eval(), peeked.tokenizer, model.config, peeked.meta, peeked.path)
