"""What if the model could not see a token? Hide it as a key, and measure which outputs change.

Legend: T_q output positions (the GPT's tokens, or the decoder's), T_k key positions, V vocab.

A hidden token is masked as a key in every layer (the model's `key_mask`): every query's weight to
it becomes 0 and the rest of its row is renormalised. It keeps its position, and its own row still
reads the others: unlike padding (`attention_mask`), nothing is renumbered. For the encoder-decoder
the hidden tokens are source tokens, hidden from the encoder and from cross-attention.

Each output position's change is the total variation distance between its next-token
distributions, intact and hidden: 0 when nothing changed, 1 when they share nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from model import GPTTrace, LoadedCheckpoint, Seq2SeqTrace, trace

from .labels import TokenLabel, display_token, row_labels, token_labels
from .trace import PreparedTrace

CHANGED = 0.05  # a total variation of 5% or more counts as a changed output


@dataclass(frozen=True)
class PositionChange:
    """One output position: the top prediction intact and with the tokens hidden, and how far it moved."""

    position: str = field(metadata={"column": "position"})
    written_by: str = field(metadata={"column": "token written by"})  # "you", "the model" or "the start token"
    intact: str = field(metadata={"column": "prediction, intact"})
    hidden: str = field(metadata={"column": "with the tokens hidden"})
    change: str = field(metadata={"column": "change (total variation)"})
    top_changed: str = field(metadata={"column": "top token changed"})  # "yes" or "no"


@dataclass(frozen=True)
class HiddenTokens:
    """The outputs with some input tokens hidden as keys, next to the intact ones."""

    hidden: tuple[int, ...]
    hidden_labels: tuple[str, ...]
    position_labels: tuple[TokenLabel, ...]  # (T_q,) "position:token → intact prediction" (labels.row_labels)
    hidden_row_labels: tuple[TokenLabel, ...]  # (T_q,) the same rows' predictions with the tokens hidden
    distance: np.ndarray  # (T_q,) total variation per output position
    top_changed: np.ndarray  # (T_q,) bool
    rows: tuple[PositionChange, ...]
    record: GPTTrace | Seq2SeqTrace  # the trace with the tokens hidden (its masks show them grey)

    @property
    def n_changed(self) -> int:
        return int((self.distance >= CHANGED).sum())

    @property
    def max_change(self) -> float:
        return float(self.distance.max()) if self.distance.size else 0.0

    @property
    def summary(self) -> str:
        if not self.hidden:
            return "No token is hidden: pick one or more above."
        most = int(self.distance.argmax())
        hidden = ", ".join(self.hidden_labels)
        largest = f"{self.max_change:.1%}, at {self.position_labels[most]}"
        if not self.n_changed:
            return (f"Hiding {hidden} changes no output by {CHANGED:.0%} or more (total variation): the model does "
                    f"not need it here. The largest change is {largest}.")
        return (f"Hiding {hidden} changes {self.n_changed} of {len(self.position_labels)} outputs by {CHANGED:.0%} "
                f"or more (total variation), and the top prediction at {int(self.top_changed.sum())} of them. "
                f"The largest change is {largest}.")


def hidable_labels(prepared: PreparedTrace) -> list[str]:
    """The tokens a student can hide: the GPT's traced tokens, or the encoder-decoder's source."""
    return prepared.labels


def _prediction(tokenizer, probs: torch.Tensor) -> str:
    top = int(probs.argmax())
    return f"{display_token(tokenizer.id_to_token(top))} ({float(probs[top]):.2f})"


@torch.no_grad()
def hide_tokens(checkpoint: LoadedCheckpoint, prepared: PreparedTrace, hidden: tuple[int, ...]) -> HiddenTokens:
    """Re-run the prepared input with `hidden` positions masked as keys; compare every output position."""
    hidden = tuple(sorted(set(hidden)))
    n_keys = len(prepared.tokens)
    if any(not 0 <= p < n_keys for p in hidden):
        raise ValueError(f"positions to hide must be in 0..{n_keys - 1}, got {list(hidden)}.")
    key_mask = torch.ones(1, n_keys, dtype=torch.bool)  # (1, T_k)
    key_mask[0, list(hidden)] = False
    intact = prepared.trace
    if isinstance(intact, GPTTrace):
        record = trace(checkpoint.model, intact.decoder.embedding.ids, key_mask=key_mask)
        outputs, prompt_writer = prepared.tokens, "you"
    else:
        record = trace(checkpoint.model, src=intact.encoder.embedding.ids, tgt=intact.decoder.embedding.ids,
                       src_pad_id=checkpoint.tokenizer.pad_id, key_mask=key_mask)
        outputs, prompt_writer = prepared.target_tokens, "the start token"  # the decoder's prompt is <s>
    before = torch.softmax(intact.logits[0].float(), dim=-1)  # (T_q, V)
    after = torch.softmax(record.logits[0].float(), dim=-1)
    distance = 0.5 * (before - after).abs().sum(-1)  # (T_q,)
    top_changed = (before.argmax(-1) != after.argmax(-1)) & (distance >= CHANGED)  # not a near-tie flipping
    prompt = prepared.decoder_prompt_length

    def tops(probs: torch.Tensor) -> list[str]:
        return [checkpoint.tokenizer.id_to_token(i) for i in probs.argmax(-1).tolist()]

    plain = token_labels(outputs, prompt)
    rows = tuple(PositionChange(plain[i], prompt_writer if plain[i].from_prompt else "the model",
                                _prediction(checkpoint.tokenizer, before[i]), _prediction(checkpoint.tokenizer, after[i]),
                                f"{float(distance[i]):.1%}", "yes" if top_changed[i] else "no")
                 for i in range(len(outputs)))
    labels = prepared.labels
    return HiddenTokens(hidden, tuple(labels[p] for p in hidden), tuple(row_labels(outputs, tops(before), prompt)),
                        tuple(row_labels(outputs, tops(after), prompt)), distance.numpy(), top_changed.numpy(), rows,
                        record)
