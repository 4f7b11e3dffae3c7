"""What a reversal model trained without the causal mask does when it generates, beside its teacher-forced score.

Legend: B sequences, n symbols to reverse.

Without the mask, every training position but the last sees the token it must predict and learns to copy
it, so teacher-forced accuracy reaches 100% on both halves. When generating there is no next token to
see. The reversed half still comes out mostly right: the last training position never had a next token
to copy, so the model learned the mirror rule there too. The random first half shows the copying: started
from one symbol, the model writes what it learned to do with no answer in sight.
No Streamlit here; the job calls `generation_check` once its run has ended.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from model.tasks.reversal import ReversalTask
from model.tokenizers import SymbolTokenizer

from .training import EXAMPLE_SEED, percent


@dataclass(frozen=True)
class GenerationCheck:
    """Greedy generation against teacher forcing on the same fresh sequences."""

    sequences: int
    generated_right: float  # the reversed half written by greedy generation from the n symbols
    teacher_forced_right: float  # the same n predictions with the true prefix fed in
    first_half_teacher_forced: float
    start: str  # one symbol
    continuation: str  # what the model writes after it (the random half it scored teacher-forced)

    @property
    def text(self) -> str:
        return (f"Generating, as a user would: given the n symbols, the model writes {percent(self.generated_right)} "
                f"of the reversed half right on {self.sequences} fresh sequences (teacher-forced, with the true "
                f"tokens fed in: {percent(self.teacher_forced_right)}). It can reverse because the last training "
                f"position had no next token to copy and learned the mirror rule. The first half, "
                f"{percent(self.first_half_teacher_forced)} teacher-forced, is copying: started from "
                f"`{self.start}`, the model continues `{self.continuation}`, since the token it learned to copy "
                f"does not exist yet when it generates.")


def generation_check(model: nn.Module, task: ReversalTask, tokenizer: SymbolTokenizer,
                     sequences: int = 200) -> GenerationCheck:
    """Greedy generation of the reversed half vs teacher forcing, and a continuation of one symbol."""
    n = task.n
    seq = task.make_sequences(sequences, torch.Generator().manual_seed(EXAMPLE_SEED + 1))  # (B, 2n)
    forced = task.evaluate(model, num_sequences=sequences, seed=EXAMPLE_SEED + 1)
    with torch.no_grad():
        model.eval()
        written = model.generate(seq[:, :n], n, temperature=0.0)  # (B, 2n)
        continued = model.generate(seq[:1, :1], 2 * n - 1, temperature=0.0)  # (1, 2n)
    return GenerationCheck(
        sequences, float((written[:, n:] == seq[:, n:]).float().mean()), float(forced["second_half_accuracy"]),
        float(forced["first_half_accuracy"]), tokenizer.decode(continued[0, :1].tolist()),
        tokenizer.decode(continued[0, 1:].tolist()))
