"""Two inputs of different lengths in one batch: the padding, the masks, and proof that nothing leaks.

Legend: B = 2 rows, T padded length (GPT, or decoder input), S padded source length, H heads.

    GPT              rows padded on the left or the right with `attention_mask` (True = real token):
                     the combined mask is causal AND padding; positions count real tokens only
    encoder-decoder  sources padded on the right with <pad> (the padding mask of the encoder and
                     of cross-attention); each row's decoder input is <s> + its own output, padded too

Generation pads on the left: the next token is read at the last column, which must be a real token.
`last_column` says what each row would predict there, next to what it predicts alone.

Labels read "column:token", the column of the padded batch (a GPT's positions count real tokens only);
the decoder side's rows add what each predicts ("3:7 → 6", labels.TokenLabel), and the columns before
`prompt_columns[row]` are the prompt (with left padding, its pads too): the rest is the model's own part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from model import GPTTrace, LoadedCheckpoint, Seq2SeqTrace, trace
from model.attention import AttentionTrace

from .examples import task_examples
from .inputs import Note, read_input
from .labels import TokenLabel, display_token
from .trace import AttentionKindName, PreparedTrace

Side = Literal["left", "right"]
PAD_LABEL = "<pad>"
COLUMN_NOTE = ("Here a label's number is its column in the batch: a GPT numbers positions by real tokens only, so "
               "with left padding a token's position is its column minus the pads before it.")


@dataclass(frozen=True)
class PaddedBatch:
    """A padded batch of two inputs, traced once, with what the padding view shows."""

    architecture: str
    side: Side
    ids: np.ndarray  # (B, T) the GPT's ids, or the encoder's source ids
    tokens: tuple[tuple[str, ...], ...]  # per row, PAD_LABEL at padding
    real: np.ndarray  # (B, T) bool: the padding mask, True for real tokens
    target_tokens: tuple[tuple[str, ...], ...]  # encoder-decoder: per row, the decoder input
    record: GPTTrace | Seq2SeqTrace
    max_difference: float  # max |logit| difference at real positions, batch vs each row alone
    last_column: tuple[str, ...]  # GPT: the token each row predicts at the batch's last column
    alone_next: tuple[str, ...]  # GPT: the token each row predicts after its last real token, alone
    predictions: tuple[tuple[str | None, ...], ...] = ()  # (B, T) decoder side: the top next token, None at pads
    prompt_columns: tuple[int, ...] = ()  # (B,) decoder side: the columns before this one are the prompt

    def _decoder_tokens(self, row: int) -> tuple[str, ...]:
        return self.tokens[row] if self.architecture == "gpt" else self.target_tokens[row]

    def labels(self, row: int) -> list[str]:
        """The GPT's tokens or the encoder's source as "column:token"; a GPT's answer columns marked."""
        if self.architecture != "gpt":
            return [TokenLabel(i, t) for i, t in enumerate(self.tokens[row])]
        return self._decoder_labels(row, with_predictions=False)

    def target_labels(self, row: int) -> list[str]:
        return self._decoder_labels(row, with_predictions=False)

    def _decoder_labels(self, row: int, with_predictions: bool) -> list[str]:
        tokens, end = self._decoder_tokens(row), self.prompt_columns[row]
        predicts = self.predictions[row] if with_predictions else (None,) * len(tokens)
        return [TokenLabel(i, t, p, i < end) for i, (t, p) in enumerate(zip(tokens, predicts))]

    def query_labels(self, kind: AttentionKindName, row: int) -> list[str]:
        """Rows: on the decoder side "column:token → prediction" (none at pads), the encoder's "column:token"."""
        return self.labels(row) if kind == "encoder" else self._decoder_labels(row, with_predictions=True)

    def key_labels(self, kind: AttentionKindName, row: int) -> list[str]:
        return self.target_labels(row) if kind == "decoder" else self.labels(row)

    def attention(self, kind: AttentionKindName, layer: int, row: int) -> AttentionTrace:
        """One row's attention in one layer, as a batch of one (so figures read it as any trace)."""
        stack = self.record.encoder if kind == "encoder" else self.record.decoder
        att = stack.layers[layer].cross_attention if kind == "cross" else stack.layers[layer].self_attention
        full_mask = None if att.mask is None else att.mask.expand(att.weights.shape)[row:row + 1]
        pick = {name: getattr(att, name)[row:row + 1] for name in
                ("q", "k", "v", "raw_scores", "scaled_scores", "weights", "head_outputs", "concatenated", "output")}
        return AttentionTrace(mask=full_mask, **pick)

    def combined_mask(self, kind: AttentionKindName, row: int) -> np.ndarray:
        """(T_q, T_k) bool: what the row's queries may read in this kind of attention (causal AND padding)."""
        att = self.attention(kind, 0, row)
        if att.mask is None:
            return np.ones(att.weights.shape[2:], dtype=bool)
        return att.mask[0, 0].numpy().astype(bool)

    @property
    def generation_side_matters(self) -> bool:
        """True when some row's prediction at the last column differs from its prediction alone."""
        return self.last_column != self.alone_next


def default_second_input(checkpoint: LoadedCheckpoint, text: str) -> str:
    """An example of a different length from text, for the batch's second row."""
    first = read_input(checkpoint, text)
    length = len(first.ids or ())
    for example in task_examples(checkpoint):
        ids = read_input(checkpoint, example).ids
        if ids is not None and len(ids) != length:
            return example
    if length > 1:  # every example has the input's length (reversal): its first half
        return checkpoint.tokenizer.decode(list(first.ids[: length // 2]))
    return ""


def _pad(rows: list[list[int]], pad_id: int, side: Side) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # (B, T)
    real = torch.zeros(len(rows), width, dtype=torch.bool)  # (B, T)
    for b, row in enumerate(rows):
        span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[b, span], real[b, span] = torch.tensor(row, dtype=torch.long), True
    return ids, real


def _shown(tokenizer, ids: torch.Tensor, real: torch.Tensor) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(display_token(tokenizer.id_to_token(i)) if r else PAD_LABEL
                       for i, r in zip(row.tolist(), mask.tolist())) for row, mask in zip(ids, real))


def _predicted(tokenizer, logits: torch.Tensor, real: torch.Tensor) -> tuple[tuple[str | None, ...], ...]:
    """The top next token at every real cell of a batch's logits (B, T, V); None at pads."""
    return tuple(tuple(display_token(tokenizer.id_to_token(i)) if r else None
                       for i, r in zip(row.tolist(), mask.tolist())) for row, mask in zip(logits.argmax(-1), real))


def pad_batch(checkpoint: LoadedCheckpoint, prepared: PreparedTrace, second_text: str,
              side: Side = "left") -> tuple[PaddedBatch | None, tuple[Note, ...]]:
    """The prepared input and a second one in one padded batch; (None, notes) when the second is refused."""
    second = read_input(checkpoint, second_text)
    notes = tuple(Note(n.level, "Second input: " + n.message) for n in second.notes)
    if not second.ok:
        return None, notes
    if prepared.architecture == "transformer":
        return _pad_seq2seq(checkpoint, prepared, list(second.ids)), notes
    return _pad_gpt(checkpoint, prepared, list(second.ids), side), notes


@torch.no_grad()
def _pad_gpt(checkpoint: LoadedCheckpoint, prepared: PreparedTrace, second: list[int], side: Side) -> PaddedBatch:
    model, tokenizer = checkpoint.model, checkpoint.tokenizer
    rows = [prepared.trace.decoder.embedding.ids[0].tolist(), second]
    ids, real = _pad(rows, 0, side)
    record = trace(model, ids, attention_mask=real)
    difference, last_column, alone_next = 0.0, [], []
    for b, row in enumerate(rows):
        alone = model(torch.tensor([row]))[0]  # (T_b, V)
        difference = max(difference, float((record.logits[b][real[b]] - alone).abs().max()))
        last_column.append(display_token(tokenizer.id_to_token(int(record.logits[b, -1].argmax()))))
        alone_next.append(display_token(tokenizer.id_to_token(int(alone[-1].argmax()))))
    pads = [int((~r).sum()) if side == "left" else 0 for r in real]  # columns before a row's first token
    prompt_columns = (pads[0] + prepared.prompt_length, ids.shape[1])  # the second input is all prompt
    return PaddedBatch("gpt", side, ids.numpy(), _shown(tokenizer, ids, real), real.numpy(), (), record,
                       difference, tuple(last_column), tuple(alone_next), _predicted(tokenizer, record.logits, real),
                       prompt_columns)


@torch.no_grad()
def _pad_seq2seq(checkpoint: LoadedCheckpoint, prepared: PreparedTrace, second: list[int]) -> PaddedBatch:
    model, tokenizer = checkpoint.model, checkpoint.tokenizer
    pad, bos, eos = tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id
    sources = [prepared.trace.encoder.embedding.ids[0].tolist(), second]
    targets = [prepared.trace.decoder.embedding.ids[0].tolist()]
    out = model.generate(torch.tensor([second]), bos, eos, checkpoint.config.max_len - 1, src_pad_id=pad)[0].tolist()
    targets.append(out[: out.index(eos, 1)] if eos in out[1:] else out)  # <s> + output, without </s>
    src, src_real = _pad(sources, pad, "right")
    tgt, tgt_real = _pad(targets, pad, "right")
    record = trace(model, src=src, tgt=tgt, src_pad_id=pad, tgt_pad_id=pad)
    difference = 0.0
    for b in range(2):
        alone = model(torch.tensor([sources[b]]), torch.tensor([targets[b]]), src_pad_id=pad)[0]  # (T_b, V)
        difference = max(difference, float((record.logits[b][tgt_real[b]] - alone).abs().max()))
    return PaddedBatch("transformer", "right", src.numpy(), _shown(tokenizer, src, src_real), src_real.numpy(),
                       _shown(tokenizer, tgt, tgt_real), record, difference, (), (),
                       _predicted(tokenizer, record.logits, tgt_real), (1, 1))  # the decoder's prompt is <s>
