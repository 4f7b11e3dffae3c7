"""Which heads matter? Switch each head off alone, and each layer's heads all together, and measure.

Legend: K kinds of attention, L n_layers, H heads.

One head off can cost nothing while its whole layer off costs everything: heads that copy the
same information are redundant, and only switching them all off shows that the layer was needed.
The map reports both, and says so where it finds a redundant layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model import LoadedCheckpoint

from .experiments import EVAL_SEQUENCES, HeadRef, accuracy_by_position, head_choice
from .trace import AttentionKindName

MATTERS = 0.20  # a drop of 20 points or more: this head (or layer) is needed


@dataclass(frozen=True)
class ImportanceMap:
    """Drop in the task's headline accuracy with one head off, and with a whole layer off."""

    kinds: tuple[AttentionKindName, ...]
    metric: str
    baseline: float
    chance: float | None
    head_drop: np.ndarray  # (K, L, H): baseline - accuracy with that head alone off
    layer_drop: np.ndarray  # (K, L): baseline - accuracy with every head of that layer off

    @property
    def n_layers(self) -> int:
        return self.layer_drop.shape[1]

    @property
    def n_heads(self) -> int:
        return self.head_drop.shape[2]

    def redundant_layers(self) -> tuple[tuple[AttentionKindName, int], ...]:
        """Layers no single head of which matters, though the layer as a whole does."""
        return tuple((kind, layer) for k, kind in enumerate(self.kinds) for layer in range(self.n_layers)
                     if self.head_drop[k, layer].max() < MATTERS and self.layer_drop[k, layer] >= MATTERS)

    def important_heads(self) -> tuple[HeadRef, ...]:
        return tuple(HeadRef(kind, layer, head) for k, kind in enumerate(self.kinds)
                     for layer in range(self.n_layers) for head in range(self.n_heads)
                     if self.head_drop[k, layer, head] >= MATTERS)

    def findings(self) -> tuple[str, ...]:
        """Plain sentences about what the map shows: important heads, redundant layers, or neither."""
        lines = []
        for kind, layer in self.redundant_layers():
            k = self.kinds.index(kind)
            where = "" if kind == "self" else f"{kind} "
            worst = int(self.head_drop[k, layer].argmax())
            lines.append(f"The heads of {where}layer {layer} are redundant: switching off the whole layer costs "
                         f"{self.layer_drop[k, layer]:.0%} ({self.metric} falls from {self.baseline:.0%} to "
                         f"{self.baseline - self.layer_drop[k, layer]:.0%}), but no single head costs more than "
                         f"{self.head_drop[k, layer].max():.0%} (head {worst}): the others still do its work.")
        important = self.important_heads()
        if important:
            lines.append("Heads that matter on their own (a drop of at least "
                         f"{MATTERS:.0%}): " + ", ".join(ref.label for ref in important) + ".")
        if not lines:
            lines.append(f"No single head and no whole layer costs {MATTERS:.0%} or more of the {self.metric}.")
        return tuple(lines)


def importance_map(checkpoint: LoadedCheckpoint, num_sequences: int = EVAL_SEQUENCES) -> ImportanceMap | None:
    """Ablate every head alone and every layer whole; None when the checkpoint's task has no accuracy."""
    intact = head_choice(checkpoint)
    base = accuracy_by_position(checkpoint, intact, num_sequences)
    if base is None:
        return None
    kinds, n_layers, n_heads = intact.kinds, intact.n_layers, intact.n_heads
    head_drop = np.zeros((len(kinds), n_layers, n_heads))
    layer_drop = np.zeros((len(kinds), n_layers))
    for k, kind in enumerate(kinds):
        for layer in range(n_layers):
            for head in range(n_heads):
                off = intact.with_off((HeadRef(kind, layer, head),))
                head_drop[k, layer, head] = base.headline - accuracy_by_position(checkpoint, off, num_sequences).headline
            whole = intact.with_off(intact.layer_heads(kind, layer))
            layer_drop[k, layer] = base.headline - accuracy_by_position(checkpoint, whole, num_sequences).headline
    return ImportanceMap(kinds, base.headline_name, base.headline, base.chance, head_drop, layer_drop)
