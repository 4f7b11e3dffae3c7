"""What the app says about a checkpoint: the sidebar's model card and a row of the home page's table.

The card reads a loaded checkpoint; the row reads only config.json (`model.peek`), so listing
every model stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from model import CheckpointError, LoadedCheckpoint, peek
from model.config import GPTConfig, TransformerConfig

from .inputs import task_of

PURPOSE = {
    "reversal": "GPT that writes n symbols backwards: small enough to read every attention weight. "
                "The -mha / -gqa / -mqa variants differ only in their key/value heads.",
    "dates": "Encoder-decoder that rewrites a date such as '25 december 2023' as 2023-12-25: "
             "encoder, decoder and cross-attention.",
    "shakespeare": "Word-level GPT trained on Shakespeare's plays: attention over real language.",
}
# (meta["metrics"] key, label, as a percentage?) per task; the first present is the headline.
HEADLINES = {
    "reversal": [("second_half_accuracy", "accuracy on the reversed half", True),
                 ("sequence_accuracy", "whole sequences reversed", True)],
    "dates": [("exact_match", "dates converted exactly", True), ("char_accuracy", "characters right", True)],
    "shakespeare": [("val_loss", "validation loss (nats per word)", False),
                    ("val_perplexity", "validation perplexity", False)],
}


def headline(task_name: str | None, meta: dict) -> str | None:
    """The task's headline metric from meta, e.g. 'accuracy on the reversed half: 100.0%'."""
    metrics = meta.get("metrics") or {}
    for key, label, percent in HEADLINES.get(task_name or "", []):
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            return f"{label}: {value:.1%}" if percent else f"{label}: {value:.3f}"
    if isinstance(meta.get("final_accuracy"), (int, float)):
        return f"final training accuracy: {meta['final_accuracy']:.1%}"
    return None


def _architecture_name(architecture: str) -> str:
    return "GPT (decoder-only)" if architecture == "gpt" else "encoder-decoder"


def _heads_text(config: GPTConfig | TransformerConfig) -> str:
    return f"{config.n_heads} heads / {config.n_kv_heads} KV heads ({config.attention_variant})"


@dataclass(frozen=True)
class ModelCard:
    """The sidebar's few lines about the chosen model."""

    lines: tuple[str, ...]


def model_card(checkpoint: LoadedCheckpoint, own: bool) -> ModelCard:
    """Task and architecture, shape, size and training, headline metric; `own`: a user's saved model."""
    config, meta = checkpoint.config, checkpoint.meta
    task_name = getattr(task_of(checkpoint), "name", None)
    parameters = meta.get("parameters") or checkpoint.model.num_parameters
    steps = f" · {int(meta['steps']):,} training steps" if "steps" in meta else ""
    lines = [f"Task: {task_name or 'none'} · {_architecture_name(checkpoint.architecture)}"
             + (" · your own model" if own else ""),
             f"d_model {config.d_model} · {config.n_layers} layers · {_heads_text(config)}",
             f"{int(parameters):,} parameters{steps}"]
    metric = headline(task_name, meta)
    return ModelCard(tuple(lines + ([metric] if metric else [])))


@dataclass(frozen=True)
class CheckpointRow:
    """One row of the home page's table of models; a broken checkpoint fills only its name and why."""

    checkpoint: str = field(metadata={"column": "checkpoint"})
    source: str = field(metadata={"column": "source"})
    task: str = field(default="", metadata={"column": "task"})
    architecture: str = field(default="", metadata={"column": "architecture"})
    heads: str = field(default="", metadata={"column": "heads (H / H_kv)"})
    d_model: str = field(default="", metadata={"column": "d_model"})
    layers: str = field(default="", metadata={"column": "layers"})
    headline: str = field(default="", metadata={"column": "headline"})
    purpose: str = field(default="", metadata={"column": "what it is for"})


def describe_checkpoint(name: str, source: str, path: Path, error: str | None) -> CheckpointRow:
    """The home table's row of a listed checkpoint, from config.json alone."""
    if error:
        return CheckpointRow(name, source, purpose=f"cannot be opened: {error}")
    try:
        peeked = peek(path)
    except CheckpointError as problem:
        return CheckpointRow(name, source, purpose=f"cannot be read: {problem}")
    config, meta, task_info = peeked.config, peeked.meta, peeked.meta.get("task")
    task = task_info.get("name") if isinstance(task_info, dict) else None
    return CheckpointRow(
        name, source, task or "none", "GPT" if peeked.architecture == "gpt" else "encoder-decoder",
        f"{config.n_heads} / {config.n_kv_heads} ({config.attention_variant})", str(config.d_model),
        str(config.n_layers), headline(task, meta) or "",
        PURPOSE.get(task, "your own model" if source == "user" else ""))
