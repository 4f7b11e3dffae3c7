"""What if some attention heads were switched off? The choice of heads, and what it does to a checkpoint.

Legend: L n_layers, H heads, B batch, T length, S source length, V vocab, N evaluation sequences.

    HeadMaskChoice        which heads are off (kind, layer, head), checked against the model
    accuracy_by_position  the task's accuracy at each position on fresh data, with those heads off
                          (reversal: teacher-forced next symbol, as the Train page scores it;
                          dates: teacher-forced character of the ISO date)
    ablate                the output for one input and the next-token probabilities, intact and
                          with the heads off, side by side

A head switched off is the model's own `head_mask` (model.GPT.forward): its output is zeroed before
W_O, exactly as if W_O's columns for that head were zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from model import GPT, LoadedCheckpoint
from model.tasks import IGNORE_INDEX
from model.tasks.dates import TARGET_FORMAT

from .inputs import read_input, task_of
from .labels import dates_axis, display_token, reversal_axis
from .trace import AttentionKindName

EVAL_SEQUENCES = 300  # fresh sequences per evaluation: a few seconds for every head of a small model
EVAL_SEED = 1234  # the data is the same for every mask, so differences come from the mask alone
TOP_TOKENS = 8
CONTINUATION = 12  # greedy tokens a language model writes for the comparison


@dataclass(frozen=True, order=True)
class HeadRef:
    """One attention head: which kind of attention, which layer, which head."""

    kind: AttentionKindName
    layer: int
    head: int

    @property
    def label(self) -> str:
        where = "" if self.kind == "self" else f"{self.kind} "
        return f"{where}layer {self.layer} head {self.head}"


def model_kinds(checkpoint: LoadedCheckpoint) -> tuple[AttentionKindName, ...]:
    """The kinds of attention a checkpoint has, in the order the pages list them."""
    return ("self",) if checkpoint.architecture == "gpt" else ("encoder", "decoder", "cross")


@dataclass(frozen=True)
class HeadMaskChoice:
    """Which heads are off; every head is checked against the model's kinds, layers and heads."""

    kinds: tuple[AttentionKindName, ...]
    n_layers: int
    n_heads: int
    off: tuple[HeadRef, ...] = ()

    def __post_init__(self) -> None:
        for ref in self.off:
            if ref.kind not in self.kinds or not 0 <= ref.layer < self.n_layers or not 0 <= ref.head < self.n_heads:
                raise ValueError(f"{ref.label} is not a head of this model ({', '.join(self.kinds)}; "
                                 f"layers 0-{self.n_layers - 1}, heads 0-{self.n_heads - 1}).")
        object.__setattr__(self, "off", tuple(sorted(set(self.off))))

    @property
    def total(self) -> int:
        return len(self.kinds) * self.n_layers * self.n_heads

    @property
    def all_off(self) -> bool:
        return len(self.off) == self.total

    @property
    def summary(self) -> str:
        if not self.off:
            return "every head on"
        if self.all_off:
            return f"all {self.total} heads off"
        return "off: " + ", ".join(ref.label for ref in self.off)

    def layer_heads(self, kind: AttentionKindName, layer: int) -> tuple[HeadRef, ...]:
        """Every head of one layer: the "all heads of layer l" shortcut."""
        return tuple(HeadRef(kind, layer, h) for h in range(self.n_heads))

    def with_off(self, refs: tuple[HeadRef, ...]) -> HeadMaskChoice:
        return HeadMaskChoice(self.kinds, self.n_layers, self.n_heads, refs)

    def tensor(self, kind: AttentionKindName) -> torch.Tensor:
        """(L, H) ones, zero where a head of this kind is off."""
        mask = torch.ones(self.n_layers, self.n_heads)
        for ref in self.off:
            if ref.kind == kind:
                mask[ref.layer, ref.head] = 0.0
        return mask

    def model_mask(self) -> torch.Tensor | dict[str, torch.Tensor] | None:
        """The `head_mask` argument the model takes: a tensor for a GPT, a dict per kind otherwise."""
        if not self.off:
            return None
        if self.kinds == ("self",):
            return self.tensor("self")
        return {kind: self.tensor(kind) for kind in self.kinds}


def head_choice(checkpoint: LoadedCheckpoint, off: tuple[HeadRef, ...] = ()) -> HeadMaskChoice:
    """A HeadMaskChoice for this checkpoint; ValueError when a head is not one of the model's."""
    config = checkpoint.config
    return HeadMaskChoice(model_kinds(checkpoint), config.n_layers, config.n_heads, off)


@dataclass(frozen=True)
class PositionAccuracy:
    """The task's accuracy at each scored position, and the headline number the page compares.

    `positions` are the axis's ticks and `note` its line under the chart (labels.PositionAxis).
    """

    positions: tuple[str, ...]
    accuracy: tuple[float, ...]
    headline: float
    headline_name: str
    chance: float | None = None
    determined_from: int = 0  # first position whose target the input fixes (reversal: n - 1)
    note: str = ""


@torch.no_grad()
def accuracy_by_position(checkpoint: LoadedCheckpoint, choice: HeadMaskChoice,
                         num_sequences: int = EVAL_SEQUENCES, seed: int = EVAL_SEED) -> PositionAccuracy | None:
    """Accuracy by position with `choice`'s heads off, on fresh data; None for a task without one."""
    task = task_of(checkpoint)
    name = getattr(task, "name", None)
    model, heads = checkpoint.model.eval(), choice.model_mask()
    generator = torch.Generator().manual_seed(seed)
    if name == "reversal":
        seq = task.make_sequences(num_sequences, generator)  # (N, 2n)
        x, y = seq[:, :-1], seq[:, 1:]  # (N, 2n - 1)
        hits = (model(x, head_mask=heads).argmax(-1) == y).float()  # (N, 2n - 1)
        axis = reversal_axis(task.n, 1.0 / task.vocab)
        return PositionAccuracy(axis.ticks, tuple(hits.mean(0).tolist()), float(hits[:, task.n - 1:].mean()),
                                "accuracy on the reversed half", 1.0 / task.vocab, task.n - 1, axis.note)
    if name == "dates":
        tokenizer = checkpoint.tokenizer
        batch = task.make_batch(task.sample_examples(num_sequences, generator), tokenizer)
        pad = tokenizer.pad_id
        logits = model(batch.src, batch.tgt_in, src_pad_id=pad, tgt_pad_id=pad, head_mask=heads)  # (N, T, V)
        scored = batch.tgt_out != IGNORE_INDEX  # (N, T)
        hits = ((logits.argmax(-1) == batch.tgt_out) & scored).float().sum(0)  # (T,)
        per_position = hits / scored.float().sum(0).clamp(min=1)
        axis = dates_axis(TARGET_FORMAT, tokenizer.id_to_token(tokenizer.bos_id), tokenizer.id_to_token(tokenizer.eos_id))
        if len(axis.ticks) != len(per_position):
            raise ValueError(f"the dates task scores {len(per_position)} positions but its answer's shape has "
                             f"{len(axis.ticks)}.")
        return PositionAccuracy(axis.ticks, tuple(per_position.tolist()), float(hits.sum() / scored.sum()),
                                "characters right (teacher-forced)", note=axis.note)
    return None


@dataclass(frozen=True)
class TokenProbability:
    """One candidate next token, its probability with every head on and with the chosen heads off."""

    token: str = field(metadata={"column": "token"})
    intact: float = field(metadata={"column": "intact"})
    ablated: float = field(metadata={"column": "heads off"})


@dataclass(frozen=True)
class AblationResult:
    """The same input and data through the intact model and with the chosen heads off."""

    choice: HeadMaskChoice
    output_label: str
    output_intact: str | None
    output_ablated: str | None
    next_token_context: str  # what the model has read when it picks the token in `probabilities`
    probabilities: tuple[TokenProbability, ...]

    @property
    def output_changed(self) -> bool:
        return self.output_intact != self.output_ablated


@torch.no_grad()
def greedy_output(checkpoint: LoadedCheckpoint, ids: tuple[int, ...], choice: HeadMaskChoice, steps: int) -> str:
    """The model's greedy answer to ids with the chosen heads off, decoded to text."""
    model, tokenizer, heads = checkpoint.model.eval(), checkpoint.tokenizer, choice.model_mask()
    if isinstance(model, GPT):
        out = torch.tensor([ids], dtype=torch.long)  # (1, T)
        for _ in range(steps):
            next_id = model(out, head_mask=heads)[:, -1].argmax(-1, keepdim=True)  # (1, 1)
            out = torch.cat([out, next_id], dim=1)
        return tokenizer.decode(out[0, len(ids):].tolist())
    src = torch.tensor([ids], dtype=torch.long)  # (1, S)
    tgt = torch.tensor([[tokenizer.bos_id]], dtype=torch.long)  # (1, 1)
    for _ in range(steps):
        next_id = model(src, tgt, src_pad_id=tokenizer.pad_id, head_mask=heads)[:, -1].argmax(-1, keepdim=True)
        if int(next_id) == tokenizer.eos_id:
            break
        tgt = torch.cat([tgt, next_id], dim=1)  # (1, t + 1)
    return tokenizer.decode(tgt[0, 1:].tolist())


@torch.no_grad()
def _first_step_probabilities(checkpoint: LoadedCheckpoint, ids: tuple[int, ...], choice: HeadMaskChoice) -> torch.Tensor:
    """(V,) the distribution of the first token the model writes for ids."""
    model, tokenizer, heads = checkpoint.model.eval(), checkpoint.tokenizer, choice.model_mask()
    if isinstance(model, GPT):
        logits = model(torch.tensor([ids]), head_mask=heads)[0, -1]  # (V,)
    else:
        logits = model(torch.tensor([ids]), torch.tensor([[tokenizer.bos_id]]), src_pad_id=tokenizer.pad_id,
                       head_mask=heads)[0, -1]  # (V,)
    return torch.softmax(logits.float(), dim=-1)


def _steps(checkpoint: LoadedCheckpoint, n_ids: int) -> tuple[int, str]:
    task = task_of(checkpoint)
    name = getattr(task, "name", None)
    if name == "reversal":
        return min(task.n, checkpoint.config.max_len - n_ids), "reversed"
    if name == "dates" or checkpoint.architecture == "transformer":
        return min(getattr(task, "target_len", checkpoint.config.max_len - 2) + 1, checkpoint.config.max_len - 1), \
            "converted"
    return max(0, min(CONTINUATION, checkpoint.config.max_len - n_ids)), "continued (greedy)"


def ablate(checkpoint: LoadedCheckpoint, text: str, choice: HeadMaskChoice) -> AblationResult:
    """The sidebar's input, intact and with `choice`'s heads off (accuracy: `accuracy_by_position`)."""
    intact = head_choice(checkpoint)
    model_input = read_input(checkpoint, text)
    out_intact = out_ablated = None
    context, probabilities = "", ()
    steps, label = _steps(checkpoint, len(model_input.ids or ()))
    if model_input.ok:
        if steps > 0:
            out_intact = greedy_output(checkpoint, model_input.ids, intact, steps)
            out_ablated = greedy_output(checkpoint, model_input.ids, choice, steps)
        before = _first_step_probabilities(checkpoint, model_input.ids, intact)
        after = _first_step_probabilities(checkpoint, model_input.ids, choice)
        top = torch.topk(torch.maximum(before, after), min(TOP_TOKENS, before.shape[0])).indices.tolist()
        tokenizer = checkpoint.tokenizer
        probabilities = tuple(TokenProbability(display_token(tokenizer.id_to_token(i)), float(before[i]),
                                               float(after[i])) for i in top)
        context = "the input" if checkpoint.architecture == "gpt" else "the input and the start token <s>"
    return AblationResult(choice, label, out_intact, out_ablated, context, probabilities)
