"""Sequence reversal: n random symbols, then the same symbols backwards (decoder-only GPT).

Legend: B batch, T sequence length (2n - 1 model inputs), V vocab.

Worked example, n = 3, vocab = 10: the sequence is `4 1 7 | 7 1 4` (length 2n = 6).
Next-token training feeds x = seq[:-1] and scores every prediction y = seq[1:]:

    position p      0  1  2  3  4
    input x[p]      4  1  7  7  1
    target y[p]     1  7  7  1  4
                    \\__/  \\_____/
              first half  second half

Predictions at p = 0 .. n-2 guess the next *random* symbol: nothing in the prefix
determines it, so the best possible accuracy there is chance, 1 / vocab. From p = n-1
on every target is fixed by the prefix (the first one is the last content symbol
repeated), so a model that has learnt the task gets all of them right. The gap
between the two halves is the point of the demo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from model.tasks import LMBatch, eval_mode, logits_of, model_device, task_params, token_loss
from model.tokenizers import SymbolTokenizer


@dataclass(frozen=True)
class ReversalTask:
    """Copy n random symbols in reverse order; symbols are ids 0 .. vocab-1."""

    n: int = 8
    vocab: int = 10
    name: ClassVar[str] = "reversal"
    model_kind: ClassVar[str] = "gpt"

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n < 2:
            raise ValueError(f"reversal n must be an integer of at least 2, got {self.n!r}.")
        if not isinstance(self.vocab, int) or self.vocab < 2:
            raise ValueError(f"reversal vocab must be an integer of at least 2, got {self.vocab!r}.")

    @property
    def required_max_len(self) -> int:
        """Longest sequence the model sees: n prompt symbols plus n generated ones."""
        return 2 * self.n

    def describe(self) -> dict[str, Any]:
        """JSON description, the inverse of from_dict."""
        return {"name": self.name, "n": self.n, "vocab": self.vocab}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReversalTask:
        """Rebuild from describe() output; ValueError when malformed."""
        return cls(**task_params(cls, d))

    def make_tokenizer(self) -> SymbolTokenizer:
        """Symbols "0" .. str(vocab-1), written separated by spaces."""
        return SymbolTokenizer.of_size(self.vocab)

    def make_sequences(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """Full sequences: n random ids followed by them reversed."""
        first = torch.randint(0, self.vocab, (batch_size, self.n), generator=generator)  # (B, n)
        return torch.cat([first, first.flip(1)], dim=1)  # (B, 2n)

    def sample_batch(self, batch_size: int, generator: torch.Generator) -> LMBatch:
        """A training batch: x = seq[:, :-1], y = seq[:, 1:], every position scored."""
        seq = self.make_sequences(batch_size, generator)  # (B, 2n)
        return LMBatch(x=seq[:, :-1].contiguous(), y=seq[:, 1:].contiguous())  # (B, 2n-1) each

    def loss(self, model: Any, batch: LMBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy of next-token prediction over all 2n-1 positions."""
        return token_loss(logits_of(model(batch.x)), batch.y)

    def evaluate(
        self, model: Any, num_sequences: int = 2000, seed: int = 0, device: str = "cpu", batch_size: int = 500
    ) -> dict[str, Any]:
        """Per-position accuracy on fresh sequences, split into the random and the determined half."""
        seq = self.make_sequences(num_sequences, torch.Generator().manual_seed(seed))  # (N, 2n)
        correct, loss_sum = [], 0.0
        with eval_mode(model):
            for start in range(0, num_sequences, batch_size):
                chunk = seq[start : start + batch_size].to(device)
                x, y = chunk[:, :-1], chunk[:, 1:]  # (B, 2n-1)
                logits = logits_of(model(x)).float()  # (B, 2n-1, V)
                loss_sum += float(F.cross_entropy(logits.transpose(1, 2), y, reduction="sum"))
                correct.append((logits.argmax(-1) == y).cpu())
        hits = torch.cat(correct).float()  # (N, 2n-1)
        first, second = hits[:, : self.n - 1], hits[:, self.n - 1 :]
        return {
            "accuracy_by_position": hits.mean(0).tolist(),
            "first_half_accuracy": float(first.mean()),
            "second_half_accuracy": float(second.mean()),
            # Teacher-forced and greedy decoding agree here: if every forced step is
            # right, greedy generation sees exactly the true prefix at every step.
            "sequence_accuracy": float(second.all(dim=1).float().mean()),
            "chance": 1.0 / self.vocab,
            "loss": loss_sum / hits.numel(),
            "num_sequences": num_sequences,
        }

    def run(self, model: Any, tokenizer: SymbolTokenizer, text: str) -> str:
        """Reverse n space-separated symbols with greedy generation; returns the n new symbols."""
        ids = tokenizer.encode(text)
        if len(ids) != self.n:
            raise ValueError(f"reversal needs exactly {self.n} symbols separated by spaces, got {len(ids)}.")
        idx = torch.tensor([ids], dtype=torch.long, device=model_device(model))  # (1, n)
        with eval_mode(model):
            out = model.generate(idx, self.n, temperature=0.0)  # (1, 2n)
        return tokenizer.decode(out[0, self.n : 2 * self.n].tolist())
