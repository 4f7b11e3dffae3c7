"""From (checkpoint, text) to a prepared trace: the one forward pass every inspection page reads.

Legend: T traced length (GPT, or decoder input), S source length, D d_model, H heads,
Hkv key/value heads, Dh d_head, V vocab.

    GPT, reversal with n symbols   the prompt plus the model's greedy answer, 2n - 1 tokens:
                                   each answer position shows what the model looked at to write it
    GPT, anything else             the tokens as typed; `answer` is the model's continuation, sampled
                                   with its task's settings (Shakespeare) or greedy, never <unk>/<pad>/<s>
    encoder-decoder (dates)        source = the text; decoder input = <s> + the model's own greedy
                                   output, so cross-attention shows what it read for each character

Plain Python and torch: the UI package caches `prepare_trace` per (checkpoint version, text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from model import GPTTrace, LoadedCheckpoint, Seq2SeqTrace, trace
from model.attention import AttentionTrace, MultiHeadAttention
from model.sampling import SamplingSettings, never_generated
from model.stack import StackTrace

from .inputs import ModelInput, Note, read_input, task_of
from .labels import display_token, row_labels, token_labels

AttentionKindName = Literal["self", "encoder", "decoder", "cross"]

CONTINUATION_TOKENS = 20


@dataclass(frozen=True)
class AttentionKind:
    """One kind of attention a model has, and where its queries and keys/values come from."""

    key: AttentionKindName
    title: str
    queries_from: str
    keys_from: str
    mask: str


ATTENTION_KINDS = {
    "self": AttentionKind("self", "Masked self-attention", "the input tokens", "the same tokens",
                          "causal: each token sees itself and the tokens before it"),
    "encoder": AttentionKind("encoder", "Encoder self-attention", "the source (your input)", "the source",
                             "padding only: every source token sees every other"),
    "decoder": AttentionKind("decoder", "Decoder masked self-attention", "the decoder input (<s> + output so far)",
                             "the decoder input", "causal: each output position sees the ones before it"),
    "cross": AttentionKind("cross", "Cross-attention", "the decoder (output side)", "the encoder output (source side)",
                           "source padding only: every output position may read the whole source"),
}


@dataclass(frozen=True)
class TokenRow:
    """One token of the traced input: a row of the tokens table."""

    position: int = field(metadata={"column": "position"})
    token: str = field(metadata={"column": "token"})
    id: int = field(metadata={"column": "id"})
    written_by: str = field(metadata={"column": "written by"})


@dataclass(frozen=True)
class PreparedTrace:
    """A traced forward pass plus what the pages say about it. `trace` is None when the input was refused."""

    architecture: str  # "gpt" | "transformer"
    notes: tuple[Note, ...]
    trace: GPTTrace | Seq2SeqTrace | None = None
    tokens: tuple[str, ...] = ()  # GPT: the traced sequence; encoder-decoder: the source
    target_tokens: tuple[str, ...] = ()  # encoder-decoder: the decoder input (<s> + output)
    prompt_length: int = 0  # tokens that came from the user (the rest is the model's answer)
    answer: str | None = None
    answer_label: str = ""
    answer_settings: SamplingSettings | None = None  # how the answer was generated
    answer_how: str = ""  # the same in words: "greedy: ..." or "sampled at temperature 0.8, ..."
    norm_position: str = "pre"  # "pre": attention reads the norm's output; "post": the residual stream
    predictions: tuple[str, ...] = ()  # the model's most likely next token at each decoder row (GPT: each token)
    input: ModelInput | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return self.trace is not None

    @property
    def labels(self) -> list[str]:
        return token_labels(self.tokens)

    @property
    def target_labels(self) -> list[str]:
        return token_labels(self.target_tokens)

    @property
    def kinds(self) -> list[AttentionKindName]:
        """The attention kinds this model has, in the order a page offers them."""
        return ["self"] if self.architecture == "gpt" else ["encoder", "decoder", "cross"]

    @property
    def source_stack(self) -> StackTrace:
        """The stack that read the user's text: the GPT's decoder, or the encoder."""
        return self.trace.decoder if isinstance(self.trace, GPTTrace) else self.trace.encoder

    def token_table(self) -> tuple[TokenRow, ...]:
        """Position, token, id and who wrote it, for the sequence the source stack read."""
        ids = self.source_stack.embedding.ids[0].tolist()
        return tuple(TokenRow(i, display_token(t), ids[i], "you" if i < self.prompt_length else "the model")
                     for i, t in enumerate(self.tokens))

    @property
    def answer_starts_inside(self) -> bool:
        """True when the traced sequence goes on past the prompt with the model's own answer."""
        return self.prompt_length < len(self.tokens)

    def stack(self, kind: str) -> StackTrace:
        return self.trace.encoder if kind == "encoder" else self.trace.decoder

    def attention(self, kind: str) -> list[AttentionTrace]:
        """One AttentionTrace per layer for this kind."""
        layers = self.stack(kind).layers
        return [layer.cross_attention if kind == "cross" else layer.self_attention for layer in layers]

    @property
    def decoder_prompt_length(self) -> int:
        """Rows of the decoder side that came from the prompt: the GPT's prompt, or the decoder's <s>."""
        return self.prompt_length if self.architecture == "gpt" else 1

    def query_labels(self, kind: str) -> list[str]:
        """Row labels: "position:token → prediction" on a decoder's rows (labels.row_labels), else "position:token"."""
        if kind == "encoder":
            return self.labels
        tokens = self.tokens if kind == "self" else self.target_tokens
        if len(self.predictions) != len(tokens):
            return token_labels(tokens, self.decoder_prompt_length)
        return row_labels(tokens, self.predictions, self.decoder_prompt_length)

    def key_labels(self, kind: str) -> list[str]:
        """Column labels "position:token"; a decoder's own tokens know whether the prompt or the model wrote them."""
        if kind == "decoder":
            return token_labels(self.target_tokens, self.decoder_prompt_length)
        return token_labels(self.tokens, self.prompt_length) if kind == "self" else self.labels

    def attention_inputs(self, kind: str, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(X for the queries (1, T_q, D), X for keys/values (1, T_k, D)) that entered attention.

        Pre-norm layers feed the norm's output to attention; post-norm layers the residual stream.
        Cross-attention reads keys and values from the encoder's output.
        """
        layer_trace = self.stack(kind).layers[layer]
        sub = layer_trace.cross_residual if kind == "cross" else layer_trace.attention_residual
        x_query = sub.normed if self.norm_position == "pre" else sub.residual_in
        return x_query, (self.trace.encoder.output if kind == "cross" else x_query)


def attention_module(checkpoint: LoadedCheckpoint, kind: str, layer: int) -> MultiHeadAttention:
    """The attention module whose weights W_Q, W_K, W_V, W_O made this kind of attention in this layer."""
    model = checkpoint.model
    if kind == "self":
        return model.decoder.layers[layer].self_attn
    if kind == "encoder":
        return model.encoder.layers[layer].self_attn
    block = model.decoder.layers[layer]
    return block.cross_attn if kind == "cross" else block.self_attn


def prepare_trace(checkpoint: LoadedCheckpoint, text: str) -> PreparedTrace:
    """Read text, run the model once with tracing on, and return everything the pages show."""
    model_input = read_input(checkpoint, text)
    base = dict(architecture=checkpoint.architecture, notes=model_input.notes, input=model_input,
                norm_position=checkpoint.config.norm_position)
    if not model_input.ok:
        return PreparedTrace(**base)
    if checkpoint.architecture == "transformer":
        return _prepare_seq2seq(checkpoint, model_input, base)
    return _prepare_gpt(checkpoint, model_input, base)


def _prepare_gpt(checkpoint: LoadedCheckpoint, model_input: ModelInput, base: dict) -> PreparedTrace:
    model, tokenizer = checkpoint.model, checkpoint.tokenizer
    idx = torch.tensor([model_input.ids], dtype=torch.long)  # (1, T)
    n = idx.shape[1]
    room = checkpoint.config.max_len - n
    answer, label, settings = None, "", None
    if model_input.mode == "reverse":
        settings = SamplingSettings()  # greedy
        full = model.generate(idx, n, temperature=0.0)  # (1, 2n)
        traced_ids = full[:, : 2 * n - 1]  # (1, 2n - 1): the inputs that produced the n answer symbols
        answer, label = tokenizer.decode(full[0, n:].tolist()), "The model reverses it to"
    else:
        traced_ids = idx
        task = task_of(checkpoint)
        if room > 0 and getattr(task, "name", None) in (None, "shakespeare"):  # language models continue the text
            settings = getattr(task, "sampling", SamplingSettings()).with_suppressed(never_generated(tokenizer))
            new = _continue(model, idx, min(CONTINUATION_TOKENS, room), settings)
            answer, label = tokenizer.decode(new[0, n:].tolist()), "The model continues"
    record = trace(model, traced_ids)
    tokens = tuple(tokenizer.id_to_token(i) for i in traced_ids[0].tolist())
    return PreparedTrace(**base, trace=record, tokens=tokens, prompt_length=n, answer=answer, answer_label=label,
                         answer_settings=settings, answer_how=_how(settings, tokenizer),
                         predictions=_predictions(record.logits, tokenizer))


def _predictions(logits: torch.Tensor, tokenizer) -> tuple[str, ...]:
    """The most likely next token at each row of the traced logits (1, T, V)."""
    return tuple(tokenizer.id_to_token(i) for i in logits[0].argmax(-1).tolist())


def _continue(model, idx: torch.Tensor, steps: int, settings: SamplingSettings) -> torch.Tensor:
    """A short continuation (1, T + steps): greedy, or sampled with the settings' seed (reproducible)."""
    generator = torch.Generator().manual_seed(settings.seed or 0)
    return model.generate(idx, steps, settings.temperature, settings.top_k, generator=generator,
                          top_p=settings.top_p, suppress_ids=settings.suppress_ids)


def _how(settings: SamplingSettings | None, tokenizer) -> str:
    """The settings in words, the special tokens named (PreparedTrace.answer_how)."""
    return "" if settings is None else settings.describe(tokenizer.tokens)


def _prepare_seq2seq(checkpoint: LoadedCheckpoint, model_input: ModelInput, base: dict) -> PreparedTrace:
    model, tokenizer = checkpoint.model, checkpoint.tokenizer
    if tokenizer.bos_id is None or tokenizer.eos_id is None:
        return PreparedTrace(**{**base, "notes": base["notes"] + (
            Note("error", "This encoder-decoder's tokenizer has no start/end tokens, so it cannot translate."),)})
    src = torch.tensor([model_input.ids], dtype=torch.long)  # (1, S)
    task = task_of(checkpoint)
    max_new = checkpoint.config.max_len - 1
    if task is not None and hasattr(task, "target_len"):
        max_new = min(max_new, task.target_len + 1)
    settings = SamplingSettings().with_suppressed(never_generated(tokenizer))  # greedy, never <pad> or <s>
    out = model.generate(src, tokenizer.bos_id, tokenizer.eos_id, max_new, src_pad_id=tokenizer.pad_id,
                         suppress_ids=settings.suppress_ids)[0]
    ids = out.tolist()
    if tokenizer.eos_id in ids[1:]:
        ids = ids[: ids.index(tokenizer.eos_id, 1)]  # <s> + output, without the end token
    tgt = torch.tensor([ids], dtype=torch.long)  # (1, T)
    record = trace(model, src=src, tgt=tgt, src_pad_id=tokenizer.pad_id)
    return PreparedTrace(
        **base,
        trace=record,
        tokens=tuple(tokenizer.id_to_token(i) for i in model_input.ids),
        target_tokens=tuple(tokenizer.id_to_token(i) for i in ids),
        prompt_length=len(model_input.ids),
        answer=tokenizer.decode(ids[1:]),
        answer_label="The model writes",
        answer_settings=settings,
        answer_how=_how(settings, tokenizer),
        predictions=_predictions(record.logits, tokenizer),
    )
