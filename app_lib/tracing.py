"""From (checkpoint name, text) to a prepared trace the pages can plot, cached.

Legend: T traced length (GPT, or decoder input), S source length, D d_model, H heads,
Hkv key/value heads, Dh d_head, V vocab.

`prepare_trace(checkpoint, text)` is plain Python (testable without Streamlit):

    GPT, reversal with n symbols   the prompt plus the model's greedy answer, 2n - 1 tokens:
                                   each answer position shows what the model looked at to write it
    GPT, anything else             the tokens as typed; `answer` is the model's continuation
    encoder-decoder (dates)        source = the text; decoder input = <s> + the model's own greedy
                                   output, so cross-attention shows what it read for each character

`traced(name, text)` is the cached version pages call. Token labels are unique ("3:the")
because plotly merges equal category labels; `display_token` makes spaces and newlines visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import streamlit as st
import torch

from model import GPTTrace, LoadedCheckpoint, Seq2SeqTrace, trace
from model.attention import AttentionTrace, MultiHeadAttention
from model.stack import StackTrace

from .checkpoints import load_model, version_of
from .inputs import ModelInput, Note, read_input, task_of

CONTINUATION_TOKENS = 20
VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥"}


@dataclass(frozen=True)
class AttentionKind:
    """One kind of attention a model has, and where its queries and keys/values come from."""

    key: str  # "self" (GPT) | "encoder" | "decoder" | "cross"
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
    norm_position: str = "pre"  # "pre": attention reads the norm's output; "post": the residual stream
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
    def kinds(self) -> list[str]:
        """The attention kinds this model has, in the order a page offers them."""
        return ["self"] if self.architecture == "gpt" else ["encoder", "decoder", "cross"]

    @property
    def source_stack(self) -> StackTrace:
        """The stack that read the user's text: the GPT's decoder, or the encoder."""
        return self.trace.decoder if isinstance(self.trace, GPTTrace) else self.trace.encoder

    def token_table(self) -> list[dict]:
        """Position, token, id and who wrote it, for the sequence the source stack read."""
        ids = self.source_stack.embedding.ids[0].tolist()
        return [{"position": i, "token": display_token(t), "id": ids[i],
                 "written by": "you" if i < self.prompt_length else "the model"}
                for i, t in enumerate(self.tokens)]

    def stack(self, kind: str) -> StackTrace:
        return self.trace.encoder if kind == "encoder" else self.trace.decoder

    def attention(self, kind: str) -> list[AttentionTrace]:
        """One AttentionTrace per layer for this kind."""
        layers = self.stack(kind).layers
        return [layer.cross_attention if kind == "cross" else layer.self_attention for layer in layers]

    def query_labels(self, kind: str) -> list[str]:
        return self.target_labels if kind in ("decoder", "cross") else self.labels

    def key_labels(self, kind: str) -> list[str]:
        return self.target_labels if kind == "decoder" else self.labels

    def attention_inputs(self, kind: str, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(X for the queries (1, T_q, D), X for keys/values (1, T_k, D)) that entered attention.

        Pre-norm layers feed the norm's output to attention; post-norm layers the residual stream.
        Cross-attention reads keys and values from the encoder's output.
        """
        layer_trace = self.stack(kind).layers[layer]
        sub = layer_trace.cross_residual if kind == "cross" else layer_trace.attention_residual
        x_query = sub.normed if self.norm_position == "pre" else sub.residual_in
        return x_query, (self.trace.encoder.output if kind == "cross" else x_query)


def display_token(token: str) -> str:
    """A token as text a person can see: spaces, newlines and tabs become visible symbols."""
    if token in VISIBLE:
        return VISIBLE[token]
    return "".join(VISIBLE.get(c, c) for c in token) if token.isspace() else token


def token_labels(tokens) -> list[str]:
    """Unique axis labels "position:token"."""
    return [f"{i}:{display_token(t)}" for i, t in enumerate(tokens)]


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
    if model_input.mode == "reverse":
        full = model.generate(idx, n, temperature=0.0)  # (1, 2n)
        traced_ids = full[:, : 2 * n - 1]  # (1, 2n - 1): the inputs that produced the n answer symbols
        answer, label = tokenizer.decode(full[0, n:].tolist()), "The model reverses it to"
    else:
        traced_ids = idx
        answer, label = None, ""
        task_name = getattr(task_of(checkpoint), "name", None)
        if room > 0 and task_name in (None, "shakespeare"):  # language models continue the text
            new = _continue(model, idx, min(CONTINUATION_TOKENS, room), sample=task_name is not None)
            answer, label = tokenizer.decode(new[0, n:].tolist()), "The model continues"
    record = trace(model, traced_ids)
    tokens = tuple(tokenizer.id_to_token(i) for i in traced_ids[0].tolist())
    return PreparedTrace(**base, trace=record, tokens=tokens, prompt_length=n, answer=answer, answer_label=label)


def _continue(model, idx: torch.Tensor, steps: int, sample: bool) -> torch.Tensor:
    """A short continuation: sampled with a fixed seed (temperature 0.8, top-k 20) or greedy."""
    if not sample:
        return model.generate(idx, steps, temperature=0.0)
    generator = torch.Generator().manual_seed(0)
    return model.generate(idx, steps, temperature=0.8, top_k=20, generator=generator)


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
    out = model.generate(src, tokenizer.bos_id, tokenizer.eos_id, max_new, src_pad_id=tokenizer.pad_id)[0]
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
    )


# --------------------------------------------------------------- numbers pages show


@dataclass(frozen=True)
class DotProduct:
    """How one attention score was made: q_i . k_j, then / sqrt(Dh), then the mask and softmax."""

    q: np.ndarray  # (Dh,)
    k: np.ndarray  # (Dh,)
    products: np.ndarray  # (Dh,) q * k element by element
    raw: float  # sum(products), equal to raw_scores[h, i, j]
    scaled: float  # raw / sqrt(Dh)
    d_head: int
    kv_head: int
    allowed: bool
    weight: float  # the softmax weight of this cell


def dot_product(att: AttentionTrace, head: int, query: int, key: int) -> DotProduct:
    """The numbers behind attention score [head, query, key] of one traced attention."""
    n_heads, n_kv = att.q.shape[1], att.k.shape[1]
    kv_head = head // (n_heads // n_kv)
    q = att.q[0, head, query].numpy().astype(np.float64)  # (Dh,)
    k = att.k[0, kv_head, key].numpy().astype(np.float64)  # (Dh,)
    allowed = True if att.mask is None else bool(att.mask.expand(att.weights.shape)[0, head, query, key])
    return DotProduct(q, k, q * k, float(att.raw_scores[0, head, query, key]),
                      float(att.scaled_scores[0, head, query, key]), q.shape[0], kv_head, allowed,
                      float(att.weights[0, head, query, key]))


def dot_product_latex(dp: DotProduct, shown_terms: int = 3) -> str:
    """q . k written out with the first few terms, then the scaling: the numbers behind one score."""
    terms = " + ".join(f"({a:.2f})({b:.2f})" for a, b in zip(dp.q[:shown_terms], dp.k[:shown_terms]))
    more = r" + \dots" if dp.d_head > shown_terms else ""
    return (rf"q \cdot k = \sum_{{d=0}}^{{{dp.d_head - 1}}} q_d k_d = {terms}{more} = {dp.raw:.4f}, \qquad "
            rf"\frac{{q \cdot k}}{{\sqrt{{{dp.d_head}}}}} = {dp.scaled:.4f}")


def projection_shapes(module: MultiHeadAttention) -> list[dict]:
    """The four weight matrices of an attention module and their shapes, in the x W convention."""
    d_model, n_heads, n_kv, d_head = module.d_model, module.n_heads, module.n_kv_heads, module.d_head
    return [
        {"matrix": "W_Q", "shape": f"d_model × H·d_head = {d_model} × {n_heads * d_head}",
         "what it does": f"X → Q for all {n_heads} heads; head h uses columns h·d_head … (h+1)·d_head − 1"},
        {"matrix": "W_K", "shape": f"d_model × H_kv·d_head = {d_model} × {n_kv * d_head}",
         "what it does": f"keys for {n_kv} key/value head(s)"},
        {"matrix": "W_V", "shape": f"d_model × H_kv·d_head = {d_model} × {n_kv * d_head}",
         "what it does": f"values for {n_kv} key/value head(s)"},
        {"matrix": "W_O", "shape": f"H·d_head × d_model = {n_heads * d_head} × {d_model}",
         "what it does": "mixes the concatenated heads back into d_model numbers"},
    ]


@dataclass(frozen=True)
class VocabProjection:
    """Every token's embedding projected on the two principal components of the embedding table."""

    coords: np.ndarray  # (V, 2)
    tokens: list[str]
    explained: tuple[float, float]  # share of the variance each component holds


def embedding_table(checkpoint: LoadedCheckpoint) -> torch.Tensor:
    """The token embedding matrix (V, D) of the stack that reads the user's text."""
    model = checkpoint.model
    stack = model.decoder if checkpoint.architecture == "gpt" else model.encoder
    return stack.embed.token.weight.detach()


def project_vocabulary(checkpoint: LoadedCheckpoint) -> VocabProjection:
    """PCA of the embedding table by SVD of the centred matrix (deterministic, signs fixed)."""
    table = embedding_table(checkpoint).double()  # (V, D)
    centred = table - table.mean(dim=0, keepdim=True)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)  # vh (min(V, D), D)
    axes = vh[:2]  # (2, D)
    signs = torch.sign(axes.gather(1, axes.abs().argmax(dim=1, keepdim=True)))  # largest loading positive
    coords = centred @ (axes * signs).T  # (V, 2)
    variance = singular.pow(2)
    share = (variance[:2] / variance.sum()).tolist() + [0.0, 0.0]
    tokens = [display_token(t) for t in checkpoint.tokenizer.tokens] if checkpoint.tokenizer else []
    if len(tokens) != table.shape[0]:
        tokens = [str(i) for i in range(table.shape[0])]
    return VocabProjection(coords.float().numpy(), tokens, (share[0], share[1]))


def positional_table(checkpoint: LoadedCheckpoint) -> torch.Tensor | None:
    """The checkpoint's whole positional table (max_len, D), learned or sinusoidal; None if it has none."""
    model = checkpoint.model
    stack = model.decoder if checkpoint.architecture == "gpt" else model.encoder
    position = stack.embed.position
    if position is None:
        return None
    with torch.no_grad():
        return position(checkpoint.config.max_len).detach().clone()  # (max_len, D)


# --------------------------------------------------------------- cached entry points


@st.cache_data(show_spinner="Tracing the model...", max_entries=64)
def _traced_cached(name: str, version: tuple, text: str) -> PreparedTrace:
    return prepare_trace(load_model(name), text)


def traced(name: str, text: str) -> PreparedTrace:
    """The prepared trace of a listed checkpoint on text, cached per (checkpoint version, text)."""
    return _traced_cached(name, version_of(name), text)


@st.cache_data(show_spinner="Projecting the vocabulary...", max_entries=16)
def _projected_cached(name: str, version: tuple) -> VocabProjection:
    return project_vocabulary(load_model(name))


def vocabulary_projection(name: str) -> VocabProjection:
    """Cached `project_vocabulary` of a listed checkpoint."""
    return _projected_cached(name, version_of(name))


__all__ = [
    "ATTENTION_KINDS", "AttentionKind", "DotProduct", "PreparedTrace", "VocabProjection", "attention_module",
    "display_token", "dot_product", "dot_product_latex", "embedding_table", "positional_table", "prepare_trace",
    "project_vocabulary", "projection_shapes", "token_labels", "traced", "vocabulary_projection",
]
