"""The MHA/GQA/MQA comparison: families of shipped models trained alike, and their quality on fresh data.

A family is every model named FAMILY-<variant> (reversal-mha, reversal-gqa, reversal-mqa): the same
task and size, differing only in their key/value heads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from model import LoadedCheckpoint

FAMILIES = ("reversal", "shakespeare")
REVERSAL_SEQUENCES, LANGUAGE_SEQUENCES = 500, 100  # fresh sequences per evaluation: seconds, not minutes


@dataclass(frozen=True)
class Family:
    name: str
    members: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name}: " + ", ".join(self.members)


def families(names: Sequence[str]) -> tuple[Family, ...]:
    """The families with at least two members among `names`, in FAMILIES order."""
    found = (Family(f, tuple(n for n in names if n.startswith(f + "-"))) for f in FAMILIES)
    return tuple(f for f in found if len(f.members) > 1)


def shared_layers(checkpoints: Iterable[LoadedCheckpoint]) -> int:
    """How many layers every model of a family has (the layers the page can show side by side)."""
    return min(c.config.n_layers for c in checkpoints)


@dataclass(frozen=True)
class ModelQuality:
    """One model's quality on fresh sequences; `error` says why it could not be measured."""

    name: str
    error: str | None = None
    accuracy_by_position: tuple[float, ...] = ()  # reversal: one value per predicted position
    first_half: float | None = None  # reversal: the random half (chance level at best)
    second_half: float | None = None  # reversal: the reversed half
    val_loss: float | None = None  # language models
    val_perplexity: float | None = None
    val_accuracy: float | None = None


@dataclass(frozen=True)
class FamilyQuality:
    """Every member's quality, measured on the same fresh sequences (one seed)."""

    family: str
    members: tuple[str, ...]
    seed: int
    results: tuple[ModelQuality, ...]
    n: int | None  # reversal: symbols per sequence
    chance: float | None  # reversal: 1 / vocab

    @property
    def measured(self) -> tuple[ModelQuality, ...]:
        return tuple(r for r in self.results if r.error is None)

    @property
    def failed(self) -> tuple[ModelQuality, ...]:
        return tuple(r for r in self.results if r.error is not None)

    def language_rows(self) -> tuple[LanguageRow, ...]:
        return tuple(LanguageRow(r.name, r.val_loss, r.val_perplexity, r.val_accuracy) for r in self.measured)


@dataclass(frozen=True)
class LanguageRow:
    """A language model's quality on the held-out plays, as one table row."""

    model: str = field(metadata={"column": "model"})
    val_loss: float | None = field(metadata={"column": "validation loss"})
    val_perplexity: float | None = field(metadata={"column": "perplexity"})
    val_accuracy: float | None = field(metadata={"column": "accuracy"})


def evaluate_family(family: Family, checkpoints: Mapping[str, LoadedCheckpoint], seed: int) -> FamilyQuality:
    """Evaluate every member of `family` on fresh sequences drawn from `seed`."""
    results, task = [], None
    for name in family.members:
        checkpoint = checkpoints[name]
        try:
            task = checkpoint.task
            count = REVERSAL_SEQUENCES if family.name == "reversal" else LANGUAGE_SEQUENCES
            metrics = task.evaluate(checkpoint.model, num_sequences=count, seed=seed)
        except (FileNotFoundError, ValueError) as error:
            results.append(ModelQuality(name, error=str(error)))
            continue
        if family.name == "reversal":
            results.append(ModelQuality(name, accuracy_by_position=tuple(metrics["accuracy_by_position"]),
                                        first_half=metrics["first_half_accuracy"],
                                        second_half=metrics["second_half_accuracy"]))
        else:
            results.append(ModelQuality(name, val_loss=metrics["val_loss"], val_perplexity=metrics["val_perplexity"],
                                        val_accuracy=metrics["val_accuracy"]))
    reversal = family.name == "reversal" and task is not None
    return FamilyQuality(family.name, family.members, seed, tuple(results), task.n if reversal else None,
                         1 / task.vocab if reversal else None)
