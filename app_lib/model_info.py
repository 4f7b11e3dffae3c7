"""Short descriptions of checkpoints: the sidebar's model card and the home page's table.

Both read only the config and meta a checkpoint carries (the table peeks at config.json
without loading weights), so listing every model stays cheap.
"""

from __future__ import annotations

import re
from typing import Any

from model import CheckpointError, peek

from .checkpoints import CheckpointEntry

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


def attention_variant(n_heads: int, n_kv_heads: int) -> str:
    """MHA, GQA or MQA from the head counts."""
    if n_kv_heads == n_heads:
        return "MHA"
    return "MQA" if n_kv_heads == 1 else "GQA"


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


def card_lines(architecture: str, config: Any, meta: dict, task_name: str | None, parameters: int) -> list[str]:
    """The model card: task and architecture, shape, size and training, headline metric."""
    kind = "GPT (decoder-only)" if architecture == "gpt" else "encoder-decoder"
    lines = [
        f"Task: {task_name or 'none'} · {kind}",
        f"d_model {config.d_model} · {config.n_layers} layers · {config.n_heads} heads / {config.n_kv_heads} "
        f"KV heads ({attention_variant(config.n_heads, config.n_kv_heads)})",
        f"{int(parameters):,} parameters" + (f" · {int(meta['steps']):,} training steps" if "steps" in meta else ""),
    ]
    metric = headline(task_name, meta)
    return lines + ([metric] if metric else [])


def describe_checkpoint(entry: CheckpointEntry) -> dict[str, Any]:
    """One row of the home page's table, from config.json alone (model.peek)."""
    row: dict[str, Any] = {"checkpoint": entry.name, "source": entry.source}
    if entry.error:
        return row | {"what it is for": f"cannot be opened: {entry.error}"}
    try:
        peeked = peek(entry.path)
    except CheckpointError as error:
        return row | {"what it is for": f"cannot be read: {error}"}
    config, meta, task_info = peeked.config, peeked.meta, peeked.meta.get("task")
    task = task_info.get("name") if isinstance(task_info, dict) else None
    variant = attention_variant(config.n_heads, config.n_kv_heads)
    return row | {
        "task": task or "none",
        "architecture": "GPT" if peeked.architecture == "gpt" else "encoder-decoder",
        "heads (H / H_kv)": f"{config.n_heads} / {config.n_kv_heads} ({variant})",
        "d_model": str(config.d_model),  # text, so broken rows (blank) keep one column type
        "layers": str(config.n_layers),
        "headline": headline(task, meta) or "",
        "what it is for": PURPOSE.get(task, "your own model" if entry.source == "user" else ""),
    }


_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation mark CommonMark can escape


def escape_markdown(text: str) -> str:
    """`text` shown literally inside Markdown: punctuation backslash-escaped, line breaks as spaces.

    Escaping every punctuation mark also defuses Streamlit's extras ($math$, :red[colour], :emoji:).
    """
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", re.sub(r"\s+", " ", str(text)))


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Rows of the same or fewer keys as a Markdown table, every cell shown literally.

    The home page draws its table this way rather than with st.table: that needs pandas, whose
    import alone (about 1.5 s here) would double the time to a first page (benchmarks/app_latency.py).
    """
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(escape_markdown(c) for c in columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(escape_markdown(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
