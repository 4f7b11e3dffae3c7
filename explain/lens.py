"""The logit lens of a prepared trace: what the model would predict if it stopped after each layer.

Legend: L n_layers (L + 1 readings: after the embeddings, then after each layer), T positions, V vocab.

Read from the trace's residual stream through the final norm and the LM head (`model.logit_lens`);
the last reading is the model's own prediction. For the encoder-decoder the lens reads the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model import LoadedCheckpoint, logit_lens

from .labels import display_token, prompt_rows, row_labels
from .trace import PreparedTrace


@dataclass(frozen=True)
class LensRecord:
    """Top token and its probability per reading and position, and the final token's climb."""

    layer_names: tuple[str, ...]  # "embeddings", "after layer 0", ...
    position_labels: tuple[str, ...]  # (T,) "position:token → final token" (labels.row_labels), prompt marked
    top_tokens: tuple[tuple[str, ...], ...]  # (L + 1, T)
    top_probability: np.ndarray  # (L + 1, T)
    final_tokens: tuple[str, ...]  # (T,) the token the whole model predicts at each position
    final_probability: np.ndarray  # (L + 1, T) that token's probability at each reading
    first_reading: tuple[int, ...]  # (T,) first reading from which the final token stays on top

    def reading_of(self, position: int) -> str:
        """Where the final token at `position` first comes out on top, in words."""
        return self.layer_names[self.first_reading[position]]

    @property
    def writes_answer(self) -> bool:
        """True when the positions go on past the prompt with the model's own answer (a reversal)."""
        return prompt_rows(self.position_labels) is not None

    def appearances(self) -> tuple[tuple[str, str], ...]:
        """(row label, the reading where its prediction first comes out on top) for the rows that matter:
        those that write the answer (from the prompt's last row on) when there is one, else every row."""
        end = prompt_rows(self.position_labels)
        first = 0 if end is None else end - 1
        return tuple((self.position_labels[t], self.reading_of(t)) for t in range(first, len(self.position_labels)))


def _first_reading(top_ids: torch.Tensor, final_ids: torch.Tensor) -> tuple[int, ...]:
    """Per position, the first reading from which the top token equals the final one at every later reading."""
    agrees = (top_ids == final_ids[None]).numpy()  # (L + 1, T)
    first = []
    for t in range(agrees.shape[1]):
        reading = agrees.shape[0] - 1
        while reading > 0 and agrees[reading - 1, t]:
            reading -= 1
        first.append(reading)
    return tuple(first)


def lens_record(checkpoint: LoadedCheckpoint, prepared: PreparedTrace) -> LensRecord:
    """The logit lens of the prepared input, read at batch row 0."""
    tokenizer = checkpoint.tokenizer
    logits = logit_lens(checkpoint.model, prepared.trace)[:, 0].float()  # (L + 1, T, V)
    probs = torch.softmax(logits, dim=-1)
    top_p, top_ids = probs.max(dim=-1)  # (L + 1, T)
    final_ids = top_ids[-1]  # (T,)
    final_p = probs.gather(-1, final_ids[None, :, None].expand(probs.shape[0], -1, 1))[..., 0]  # (L + 1, T)
    names = ("embeddings",) + tuple(f"after layer {i}" for i in range(logits.shape[0] - 1))
    tokens = prepared.tokens if prepared.architecture == "gpt" else prepared.target_tokens

    def word(i: int) -> str:
        return display_token(tokenizer.id_to_token(i))

    final_tokens = tuple(word(i) for i in final_ids.tolist())
    positions = row_labels(tokens, final_tokens, prepared.decoder_prompt_length)
    return LensRecord(names, tuple(positions), tuple(tuple(word(i) for i in row.tolist()) for row in top_ids),
                      top_p.numpy(), final_tokens, final_p.numpy(), _first_reading(top_ids, final_ids))
