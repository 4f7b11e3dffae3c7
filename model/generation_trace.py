"""Generation one token at a time, with a record of what the KV cache did at every step.

Legend: T tokens in the cache after a step, T_new tokens fed in a step, S source length,
H query heads, Hkv key/value heads, Dh head dim, V vocab.

    step 0, prefill   the whole prompt goes in at once: T_new = T queries, so the causal
                      mask is needed (query i must not see keys i+1..T-1 of the same pass)
    step k, decode    only the token chosen at step k-1 goes in: one query row over all
                      T cached keys, every one of them in its past, so no mask at all

Each step appends T_new keys and values per layer to the cache and chooses the next
token from the last position's logits. For an encoder-decoder the prefill also runs
the encoder once; its K/V fill the cross-attention cache and never change.

Every step is also run twice more, only to time it: once with a copy of the cache
(the fast path, what `GPT.generate` does) and once without any cache (the whole
sequence again). The uncached run's probabilities are compared with the cached ones,
so the page can show that both ways give the same next token.

Each step keeps the last position's raw logits, so a page can redraw the distribution under other
sampling settings (model/sampling.py) without running the model again. Nothing is suppressed
unless the caller says so: pass `suppress_ids=never_generated(tokenizer)` for text a reader sees.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from .gpt import GPT
from .kv_cache import ModelCache
from .sampling import next_token_probabilities, suppress
from .transformer import Transformer

TIME_REPEATS = 3  # each timing is the fastest of at least this many runs: single runs of tiny models are noisy
TIME_BUDGET_S, MAX_REPEATS = 0.02, 20  # fast calls are repeated until this much time is spent (at most MAX_REPEATS)
WARMUP_RUNS = 3  # untimed runs before the first prefill and the first decode: PyTorch's first calls of a shape are slow


@dataclass(frozen=True)
class LayerStep:
    """What one decoder layer's self-attention did in one step (batch dimension dropped)."""

    scaled_scores: Tensor  # (H, T_new, T) q.k / sqrt(Dh), before the mask
    weights: Tensor  # (H, T_new, T) softmax weights; 0 where masked
    cross_weights: Tensor | None  # (H, T_new, S) encoder-decoder cross-attention, else None


@dataclass(frozen=True)
class GenerationStep:
    """One prefill or decode step: its attention, the next-token distribution, the cache after it."""

    kind: Literal["prefill", "decode"]
    index: int  # 0 is the prefill
    input_ids: tuple[int, ...]  # the tokens fed in (the prompt, or the token chosen one step before)
    start: int  # position of the first fed token
    mask: Tensor | None  # (T_new, T) True = allowed; None when no mask was needed
    layers: tuple[LayerStep, ...]
    logits: Tensor  # (V,) the last position's raw logits, before any sampling setting
    probabilities: Tensor  # (V,) the distribution the next token was drawn from
    chosen: int  # the next token
    temperature: float  # 0 = greedy (probabilities are then the plain softmax, suppressed ids 0)
    top_k: int | None
    top_p: float | None
    suppress_ids: tuple[int, ...]  # ids given probability 0 (never generated)
    cache_length: int  # T: tokens cached per layer after this step
    cache_bytes: int  # bytes of all layers' self-attention K and V after this step
    cross_cache_bytes: int  # encoder-decoder: the cross-attention K and V (fixed after the prefill)
    cached_seconds: float  # this step with the cache (fast path)
    uncached_seconds: float  # the same prediction recomputed from the whole sequence, no cache
    uncached_max_diff: float  # max |p_cached - p_uncached| over the vocabulary
    same_token: bool  # the uncached run picks the same next token
    row_predictions: tuple[int, ...] = ()  # (T_new,) the most likely next token at each fed row, before any setting

    @property
    def query_length(self) -> int:
        return len(self.input_ids)


def _best_time(run, repeats: int, setup=lambda: None) -> tuple[float, object]:
    """(fastest wall time of `repeats` calls of run(setup()), the last call's result); setup is not timed."""
    best, result, spent, count = float("inf"), None, 0.0, 0
    budget = TIME_BUDGET_S if repeats > 1 else 0.0  # time_repeats=1: one run each, for tests
    while count < max(1, repeats) or (spent < budget and count < MAX_REPEATS):
        argument = setup()
        begin = time.perf_counter()
        result = run(argument)
        elapsed = time.perf_counter() - begin
        best, spent, count = min(best, elapsed), spent + elapsed, count + 1
    return best, result


class GenerationSession:
    """Generate from a GPT (or an encoder-decoder) step by step, recording every step.

    GPT: `GenerationSession(gpt, prompt_ids)`. Encoder-decoder:
    `GenerationSession(transformer, source_ids, start_id=bos, end_id=eos, src_pad_id=pad)`;
    the decoder then starts from `start_id` alone. The model is only read, never changed.
    """

    def __init__(
        self,
        model: nn.Module,
        prompt_ids,
        *,
        start_id: int | None = None,
        end_id: int | None = None,
        src_pad_id: int | None = None,
        seed: int = 0,
        time_repeats: int = TIME_REPEATS,
    ):
        if not isinstance(model, (GPT, Transformer)):
            raise TypeError(f"cannot generate with a {type(model).__name__}; expected GPT or Transformer.")
        prompt = [int(i) for i in prompt_ids]
        if not prompt:
            raise ValueError("the prompt is empty: give at least one token.")
        self.model = model
        self.is_seq2seq = isinstance(model, Transformer)
        self.max_len = model.config.max_len
        if len(prompt) > self.max_len:
            raise ValueError(f"the prompt has {len(prompt)} tokens; the model's context is {self.max_len}.")
        self.end_id, self.time_repeats = end_id, time_repeats
        self.generator = torch.Generator().manual_seed(seed)
        self.cache: ModelCache = model.new_cache()
        self.steps: list[GenerationStep] = []
        if self.is_seq2seq:
            if start_id is None:
                raise ValueError("an encoder-decoder needs start_id (the decoder's first token, e.g. <s>).")
            self.source_ids = tuple(prompt)
            src = torch.tensor([prompt], dtype=torch.long)  # (1, S)
            with torch.no_grad():
                self._memory, self._src_mask = model.encode(src, src_pad_id)  # (1, S, D)
            self.tokens = [int(start_id)]
        else:
            self.source_ids = ()
            self.tokens = prompt
        self.prompt_length = len(self.tokens)

    # ------------------------------------------------------------------ state

    @property
    def fed(self) -> int:
        """Tokens already in the cache."""
        return self.cache.length

    @property
    def generated(self) -> list[int]:
        """Tokens the model chose so far."""
        return self.tokens[self.prompt_length :]

    @property
    def finished(self) -> bool:
        """True when no further step is possible: the context is full, or the model ended the output."""
        if not self.steps:
            return False
        ended = self.end_id is not None and self.steps[-1].chosen == self.end_id
        return ended or len(self.tokens) >= self.max_len  # the next token would not fit in the context

    def cache_keys(self, layer: int) -> Tensor:
        """The layer's cached keys now, (Hkv, T, Dh)."""
        return self.cache.self_attention[layer].keys[0].detach().clone()

    def cache_values(self, layer: int) -> Tensor:
        """The layer's cached values now, (Hkv, T, Dh)."""
        return self.cache.self_attention[layer].values[0].detach().clone()

    def cache_shape(self) -> tuple[int, int, int, int]:
        """(B, Hkv, T, Dh) of each layer's K (and V) cache."""
        k = self.cache.self_attention[0].keys
        return tuple(k.shape) if k is not None else (1, self.model.config.n_kv_heads, 0, self.model.config.d_head)

    # ------------------------------------------------------------------ stepping

    def _forward(self, ids: Tensor, cache: ModelCache | None, return_trace: bool = False):
        """Logits (1, T_new, V) of ids fed after what `cache` holds (or from scratch without one)."""
        if self.is_seq2seq:
            return self.model.decode(ids, self._memory, self._src_mask, cache=cache, return_trace=return_trace)
        return self.model(ids, cache=cache, return_trace=return_trace)

    def _choose(self, probs: Tensor, temperature: float) -> int:
        """The next id: the most likely one at temperature 0, else a sample from probs (V,)."""
        if temperature <= 0:
            return int(probs.argmax())
        return int(torch.multinomial(probs, 1, generator=self.generator))

    @torch.no_grad()
    def step(self, temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
             suppress_ids: Sequence[int] = ()) -> GenerationStep:
        """Run the next step (the prefill first), append it to `steps` and return it.

        temperature 0 is greedy; top_k, top_p and suppress_ids as in model/sampling.py.
        """
        if self.finished:
            raise ValueError("generation is finished: the context is full or the model ended its output.")
        if self.model.training:
            raise ValueError("put the model in eval mode before generating (dropout would change every step).")
        new_ids = self.tokens[self.fed :]
        new = torch.tensor([new_ids], dtype=torch.long)  # (1, T_new)
        whole = torch.tensor([self.tokens], dtype=torch.long)  # (1, T)
        if len(self.steps) < 2 and self.time_repeats > 1:  # first prefill, first decode
            for _ in range(WARMUP_RUNS):
                self._forward(new, copy.deepcopy(self.cache))
                self._forward(whole, None)
        cached_s, _ = _best_time(lambda cache: self._forward(new, cache), self.time_repeats,
                                 setup=lambda: copy.deepcopy(self.cache))
        uncached_s, uncached_logits = _best_time(lambda _: self._forward(whole, None), self.time_repeats)
        start = self.fed
        logits, record = self._forward(new, self.cache, return_trace=True)
        layers_trace = record.layers if self.is_seq2seq else record.decoder.layers
        suppressed = tuple(sorted({int(i) for i in suppress_ids}))
        probs = distribution(logits[0, -1], temperature, top_k, top_p, suppressed)  # (V,)
        uncached_probs = distribution(uncached_logits[0, -1], temperature, top_k, top_p, suppressed)  # (V,)
        chosen = self._choose(probs, temperature)
        first = layers_trace[0].self_attention
        step = GenerationStep(
            kind="prefill" if not self.steps else "decode",
            index=len(self.steps),
            input_ids=tuple(new_ids),
            start=start,
            mask=None if first.mask is None else first.mask.detach().reshape(first.mask.shape[-2:]).clone(),
            layers=tuple(_layer_step(layer) for layer in layers_trace),
            logits=logits[0, -1].detach().float().clone(),
            probabilities=probs.detach().clone(),
            chosen=chosen,
            temperature=float(temperature),
            top_k=top_k,
            top_p=top_p,
            suppress_ids=suppressed,
            cache_length=self.cache.length,
            cache_bytes=self.cache.self_attention_nbytes,
            cross_cache_bytes=sum(c.nbytes for c in self.cache.cross_attention),
            cached_seconds=cached_s,
            uncached_seconds=uncached_s,
            uncached_max_diff=float((probs - uncached_probs).abs().max()),
            same_token=int(uncached_probs.argmax()) == int(probs.argmax()),
            row_predictions=tuple(logits[0].argmax(-1).tolist()),
        )
        self.steps.append(step)
        self.tokens.append(chosen)
        return step


def distribution(logits: Tensor, temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
                 suppress_ids: Sequence[int] = ()) -> Tensor:
    """Next-token probabilities (V,) from logits (V,): the plain softmax when greedy (temperature 0).

    Suppressed ids are 0 either way; greedy ignores top_k and top_p (the argmax is always kept).
    """
    if temperature <= 0:
        return torch.softmax(suppress(logits[None].float(), suppress_ids), dim=-1)[0]
    return next_token_probabilities(logits[None].float(), temperature, top_k, top_p=top_p,
                                    suppress_ids=suppress_ids)[0]


def _layer_step(layer) -> LayerStep:
    """Detached CPU copies of one layer's attention, batch dimension dropped."""
    attn = layer.self_attention
    cross = layer.cross_attention.weights[0].detach().clone() if layer.cross_attention is not None else None
    return LayerStep(attn.scaled_scores[0].detach().clone(), attn.weights[0].detach().clone(), cross)


def generate_all(session: GenerationSession, max_steps: int, temperature: float = 0.0, top_k: int | None = None,
                 top_p: float | None = None, suppress_ids: Sequence[int] = ()) -> list[GenerationStep]:
    """Run up to max_steps more steps (fewer if generation finishes); returns the new steps."""
    new = []
    while len(new) < max_steps and not session.finished:
        new.append(session.step(temperature, top_k, top_p, suppress_ids))
    return new


def session_for(checkpoint, ids, seed: int = 0) -> GenerationSession:
    """A session for a LoadedCheckpoint: a GPT continues ids; an encoder-decoder reads them as its source."""
    tokenizer = checkpoint.tokenizer
    if isinstance(checkpoint.model, Transformer):
        if tokenizer is None or tokenizer.bos_id is None:
            raise ValueError("this encoder-decoder's tokenizer has no start token (<s>) to begin the output with.")
        return GenerationSession(checkpoint.model, ids, start_id=tokenizer.bos_id, end_id=tokenizer.eos_id,
                                 src_pad_id=tokenizer.pad_id, seed=seed)
    return GenerationSession(checkpoint.model, ids, seed=seed)
