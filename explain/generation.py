"""What the KV-cache page shows about a generation in progress, from the model's GenerationSession.

Legend: T tokens in the cache, V vocab, L layers, Hkv key/value heads, Dh head dim.
The session (model/generation_trace.py) runs the steps; this turns its record into the labels,
byte counts and timings the page prints, so the page itself computes nothing. `next_token_choice`
redraws the last step's distribution from its stored logits under the sampling settings on screen
(model/sampling.py), so moving a slider shows its effect without running the model again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from model import LoadedCheckpoint
from model.generation_trace import GenerationSession, GenerationStep, distribution
from model.kv_math import format_bytes
from model.sampling import SamplingSettings, keep_mask, never_generated

from .cache import CacheBreakdown, CacheCurve, latent_curve, variant_curves
from .inputs import code_span
from .labels import TokenLabel, display_token, row_labels, token_labels

BYTES_PER_ELEMENT = 4  # the session's cache is float32


@dataclass(frozen=True)
class GenerationView:
    """One moment of a generation: the steps so far, the tokens, the cache and the with/without-cache check."""

    steps: tuple[GenerationStep, ...]
    finished: bool
    vocabulary: tuple[str, ...]  # every token as displayed, indexed by id
    labels: tuple[str, ...]  # "position:token" of every token fed so far
    source_text: str | None  # encoder-decoder: the source sentence
    source_labels: tuple[str, ...]
    generated: tuple[str, ...]  # the generated tokens as displayed
    cache: CacheBreakdown  # the self-attention cache now
    cross_cache_bytes: int | None  # encoder-decoder: the encoder's K/V, cached once
    curves: tuple[CacheCurve, ...]  # the cache with MHA, GQA and MQA versions of this shape, step by step
    generated_text: str = ""  # the generated tokens decoded into text

    @property
    def cross_cache_text(self) -> str:
        return format_bytes(self.cross_cache_bytes or 0)

    @property
    def last(self) -> GenerationStep:
        return self.steps[-1]

    @property
    def prefill(self) -> GenerationStep:
        return self.steps[0]

    @property
    def newest_row_label(self) -> str:
        """The newest token's query row, "position:token → chosen": what it reads and the token it chose."""
        newest = self.labels[-1]
        return TokenLabel(newest.position, newest.token, self.vocabulary[self.last.chosen], newest.from_prompt)

    @property
    def prompt_labels(self) -> tuple[str, ...]:
        return self.labels[self.prefill.start : self.prefill.start + self.prefill.query_length]

    @property
    def prefill_row_labels(self) -> tuple[str, ...]:
        """The prefill's query rows, "position:token → prediction": each prompt token and the model's most
        likely next token there (the last row's is where generation starts; sampling may pick another)."""
        prompt = self.prompt_labels
        predicts = [self.vocabulary[i] for i in self.prefill.row_predictions]
        return tuple(row_labels([label.token for label in prompt], predicts, len(prompt)))

    @property
    def step_indices(self) -> tuple[int, ...]:
        return tuple(s.index for s in self.steps)

    @property
    def measured_bytes(self) -> tuple[int, ...]:
        return tuple(s.cache_bytes for s in self.steps)

    @property
    def cache_lengths(self) -> tuple[int, ...]:
        return tuple(s.cache_length for s in self.steps)

    @property
    def cached_ms(self) -> tuple[float, ...]:
        return tuple(1e3 * s.cached_seconds for s in self.steps)

    @property
    def uncached_ms(self) -> tuple[float, ...]:
        return tuple(1e3 * s.uncached_seconds for s in self.steps)

    @property
    def same_token_everywhere(self) -> bool:
        """Recomputing without the cache picked the same next token at every step."""
        return all(s.same_token for s in self.steps)

    @property
    def largest_difference(self) -> float:
        """The largest |p_cached - p_uncached| over every step and token."""
        return max(s.uncached_max_diff for s in self.steps)


@dataclass(frozen=True)
class NextTokenChoice:
    """One step's next-token distribution under some sampling settings, from the step's stored logits."""

    step: int
    settings: SamplingSettings  # the settings on screen now
    step_settings: SamplingSettings  # the settings the step's own token was chosen with
    probabilities: Tensor  # (V,) after suppression and temperature, before top-k/top-p (greedy: temperature 1)
    drawn: Tensor  # (V,) what the next token is drawn from: the kept ids renormalised (greedy: 1 on the argmax)
    kept: Tensor  # (V,) bool, the ids that may be chosen
    suppressed_mass: float  # the probability the model gave the suppressed ids, before they were removed
    chosen: int  # the token the step chose
    chosen_label: str
    how: str  # the settings in words, special tokens named
    step_how: str  # the step's own settings in words

    @property
    def vocab_size(self) -> int:
        return int(self.kept.shape[0])

    @property
    def kept_count(self) -> int:
        return int(self.kept.sum())

    @property
    def kept_mass(self) -> float:
        """The probability the kept ids had before the cut (the drawn ones are renormalised to 1)."""
        return float(self.probabilities[self.kept].sum())

    @property
    def changed(self) -> bool:
        """The settings on screen would choose differently from those the step's token was chosen with."""
        return self.settings.effective != self.step_settings.effective

    @property
    def chosen_kept(self) -> bool:
        return bool(self.kept[self.chosen])

    @property
    def title(self) -> str:
        if self.settings.greedy:
            return f"Step {self.step}: greedy takes the most likely token"
        cut = "any" if self.kept_count == self.vocab_size else f"the {self.kept_count} kept"
        return f"Step {self.step}: the next token is drawn from {cut} of {self.vocab_size} tokens"

    @property
    def summary(self) -> str:
        """What the settings do to this distribution, in a few sentences."""
        text = f"Settings: {self.how}."
        if self.settings.suppress_ids:
            text += (f" The model gave the special tokens {self.suppressed_mass:.1%} of the probability; they are "
                     "set to exactly 0 and the rest scaled up to fill their share.")
        if self.settings.greedy:
            text += " Greedy decoding always takes the tallest bar: top-k and top-p only matter when sampling."
        elif self.kept_count == self.vocab_size:
            text += f" Nothing is cut: any of the {self.vocab_size} tokens can be drawn."
        else:
            text += (f" Kept {self.kept_count} of {self.vocab_size} tokens (blue); before the cut they had "
                     f"{self.kept_mass:.1%} of the probability, scaled up to 100% (the dots) for the draw.")
        if self.changed:
            refused = "" if self.chosen_kept else ", which these would not allow"
            text += (f" This step's token {code_span(self.chosen_label)} was chosen with the earlier settings "
                     f"({self.step_how}){refused}; the next step uses the settings above.")
        return text


def settings_from_controls(temperature: float, top_k: int, top_p: float, never_special: bool,
                           tokenizer) -> SamplingSettings:
    """The page's controls as settings: top-k 0 and top-p 1 mean no cut; specials from `never_generated`."""
    return SamplingSettings(float(temperature), int(top_k) or None, None if top_p >= 1 else float(top_p),
                            never_generated(tokenizer) if never_special else ())


def suppression_note(tokenizer) -> str:
    """Why the page offers to never generate special tokens, for this tokenizer."""
    names = [code_span(tokenizer.id_to_token(i)) for i in never_generated(tokenizer)]
    if not names:
        return "This vocabulary has no special tokens, so this switch changes nothing here."
    text = (f"Special tokens ({', '.join(names)}) mark something other than content, so a reader should never "
            "see one written. With this on, their probability is set to exactly 0 and the other tokens are "
            "scaled up to fill their share, before temperature, top-k and top-p.")
    if getattr(tokenizer, "unk_id", None) is not None:
        text += (f" {code_span(tokenizer.id_to_token(tokenizer.unk_id))} stands for every word outside the "
                 f"{tokenizer.vocab_size:,}-token vocabulary: the model saw it often in training and predicts it "
                 "often, but writing it would show no word at all.")
    return text


def step_with(session: GenerationSession, settings: SamplingSettings) -> GenerationStep:
    """The session's next step, its token chosen with `settings`."""
    return session.step(settings.temperature, settings.top_k, settings.top_p, settings.suppress_ids)


def step_settings(step: GenerationStep) -> SamplingSettings:
    """The settings a step chose its token with."""
    return SamplingSettings(step.temperature, step.top_k, step.top_p, step.suppress_ids)


def next_token_choice(step: GenerationStep, settings: SamplingSettings, vocabulary: tuple[str, ...]) -> NextTokenChoice:
    """The step's next-token distribution redrawn under `settings`, from its stored logits (no model run)."""
    temperature = settings.temperature or 1.0  # greedy shows the plain softmax
    probabilities = distribution(step.logits, temperature, suppress_ids=settings.suppress_ids)  # (V,)
    unsuppressed = distribution(step.logits, temperature)  # (V,)
    kept = keep_mask(step.logits[None], settings.temperature, settings.top_k, top_p=settings.top_p,
                     suppress_ids=settings.suppress_ids)[0]  # (V,)
    drawn = torch.where(kept, probabilities, torch.zeros_like(probabilities))  # (V,)
    return NextTokenChoice(
        step=step.index, settings=settings, step_settings=step_settings(step), probabilities=probabilities,
        drawn=drawn / drawn.sum(), kept=kept, suppressed_mass=float(unsuppressed[list(settings.suppress_ids)].sum()),
        chosen=step.chosen, chosen_label=vocabulary[step.chosen], how=settings.describe(vocabulary),
        step_how=step_settings(step).describe(vocabulary))


def generation_view(checkpoint: LoadedCheckpoint, session: GenerationSession) -> GenerationView:
    """The page's view of `session` (a session of `checkpoint`'s model) after its latest step."""
    tokenizer, config = checkpoint.tokenizer, checkpoint.config
    batch, n_kv_heads, tokens, d_head = session.cache_shape()  # (B, Hkv, T, Dh)
    mla = config.attention_variant == "MLA"
    if mla:  # the cache holds rows [c_KV ; k_R] (B, 1, T, C + R), not K and V per head
        n_kv_heads, d_head = config.n_kv_heads, config.d_head
    cache = CacheBreakdown(config.n_layers, config.n_heads, n_kv_heads, d_head, tokens, batch, BYTES_PER_ELEMENT,
                           config.kv_latent_dim if mla else 0, config.mla_rope_dim if mla else 0)
    if cache.total_bytes != session.steps[-1].cache_bytes:
        raise RuntimeError(f"the cache formula gives {cache.total_bytes} bytes but the cache holds "
                           f"{session.steps[-1].cache_bytes}: the page would print a wrong number.")
    seq2seq = checkpoint.architecture == "transformer"
    source = [tokenizer.id_to_token(i) for i in session.source_ids] if seq2seq else []
    steps = tuple(session.steps)
    return GenerationView(
        steps=steps,
        finished=session.finished,
        vocabulary=tuple(display_token(t) for t in tokenizer.tokens),
        labels=tuple(token_labels((tokenizer.id_to_token(i) for i in session.tokens[: session.fed]),
                                  prompt_length=steps[0].query_length)),  # the prefill read the prompt
        source_text=tokenizer.decode(list(session.source_ids)) if seq2seq else None,
        source_labels=tuple(token_labels(source)),
        generated=tuple(display_token(tokenizer.id_to_token(i)) for i in session.generated),
        cache=cache,
        cross_cache_bytes=steps[-1].cross_cache_bytes if seq2seq else None,
        curves=variant_curves(config.n_layers, config.n_heads, n_kv_heads, d_head,
                              tuple(s.cache_length for s in steps))
        + ((latent_curve(config.n_layers, config.n_heads, config.kv_latent_dim, config.mla_rope_dim,
                         tuple(s.cache_length for s in steps)),) if mla else ()),
        generated_text=tokenizer.decode(list(session.generated)),
    )


def cache_tensors(session: GenerationSession, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """One layer's cached K and V, each (Hkv, T, Dh), as numpy copies."""
    return session.cache_keys(layer).numpy(), session.cache_values(layer).numpy()
