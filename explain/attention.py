"""The numbers the attention pages show about one layer, head and cell, computed from a trace.

Legend: T_q query length, T_k key length, D d_model, H query heads, Hkv key/value heads,
Dh d_head, G = H / Hkv query heads per key/value head.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model.attention import AttentionTrace, MultiHeadAttention
from model.config import AttentionVariant, attention_variant, kv_head_of

from .trace import AttentionKindName, PreparedTrace, attention_module


@dataclass(frozen=True)
class ProjectionShape:
    """One of the four weight matrices of an attention module, in the x W convention."""

    matrix: str = field(metadata={"column": "matrix"})
    shape: str = field(metadata={"column": "shape"})
    role: str = field(metadata={"column": "what it does"})


@dataclass(frozen=True)
class AttentionShapes:
    """The sizes behind step 1 and 2 of attention: who reads what, and the weight shapes."""

    n_queries: int  # T (rows of X for the queries)
    n_keys: int  # T_k (rows the keys and values come from; the source length S for cross-attention)
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    projections: tuple[ProjectionShape, ...]

    @property
    def group_size(self) -> int:
        """G: query heads that share one key/value head."""
        return self.n_heads // self.n_kv_heads

    @property
    def variant(self) -> AttentionVariant:
        return attention_variant(self.n_heads, self.n_kv_heads)

    def kv_head_of(self, head: int) -> int:
        return kv_head_of(head, self.n_heads, self.n_kv_heads)

    @property
    def d_head_formula(self) -> str:
        return f"d_head = d_model / H = {self.d_model} / {self.n_heads} = {self.d_head}"


def projection_shapes(module: MultiHeadAttention) -> tuple[ProjectionShape, ...]:
    """The four weight matrices of an attention module and their shapes (MLA: its six)."""
    d_model, n_heads, n_kv, d_head = module.d_model, module.n_heads, module.n_kv_heads, module.d_head
    if module.latent is not None:
        return latent_projection_shapes(module)
    return (
        ProjectionShape("W_Q", f"d_model × H·d_head = {d_model} × {n_heads * d_head}",
                        f"X → Q for all {n_heads} heads; head h uses columns h·d_head … (h+1)·d_head − 1"),
        ProjectionShape("W_K", f"d_model × H_kv·d_head = {d_model} × {n_kv * d_head}",
                        f"keys for {n_kv} key/value head(s)"),
        ProjectionShape("W_V", f"d_model × H_kv·d_head = {d_model} × {n_kv * d_head}",
                        f"values for {n_kv} key/value head(s)"),
        ProjectionShape("W_O", f"H·d_head × d_model = {n_heads * d_head} × {d_model}",
                        "mixes the concatenated heads back into d_model numbers"),
    )


def latent_projection_shapes(module: MultiHeadAttention) -> tuple[ProjectionShape, ...]:
    """MLA's weight matrices: the query (content + rotary), the latent, the up-projections, the rotary key, W_O."""
    d_model, n_heads, d_head, r = module.d_model, module.n_heads, module.d_head, module.rope_dim
    c = module.latent.latent_dim
    rows = [
        ProjectionShape("W_Q", f"d_model × H·(d_head + R) = {d_model} × {n_heads * (d_head + r)}",
                        f"X → Q for all {n_heads} heads: d_head content numbers" + (f" and {r} rotary ones" if r else "")),
        ProjectionShape("W_DKV", f"d_model × C = {d_model} × {c}", "X → the latent c_KV, all the cache keeps per token"
                        + (" (with the rotary key)" if r else "")),
        ProjectionShape("W_UK", f"C × H·d_head = {c} × {n_heads * d_head}", "c_KV → the content keys of every head"),
        ProjectionShape("W_UV", f"C × H·d_head = {c} × {n_heads * d_head}", "c_KV → the values of every head"),
    ]
    if r:
        rows.append(ProjectionShape("W_KR", f"d_model × R = {d_model} × {r}",
                                    "X → one rotary key per token, shared by all heads, turned by RoPE"))
    rows.append(ProjectionShape("W_O", f"H·d_head × d_model = {n_heads * d_head} × {d_model}",
                                "mixes the concatenated heads back into d_model numbers"))
    return tuple(rows)


def attention_shapes(prepared: PreparedTrace, checkpoint, kind: AttentionKindName, layer: int) -> AttentionShapes:
    """The shapes of `kind` attention in `layer` of the checkpoint that made `prepared`."""
    module = attention_module(checkpoint, kind, layer)
    return AttentionShapes(len(prepared.query_labels(kind)), len(prepared.key_labels(kind)), module.d_model,
                           module.n_heads, module.n_kv_heads, module.d_head, projection_shapes(module))


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

    def latex(self, shown_terms: int = 3) -> str:
        """q . k written out with the first few terms, then the scaling: the numbers behind one score."""
        terms = " + ".join(f"({a:.2f})({b:.2f})" for a, b in zip(self.q[:shown_terms], self.k[:shown_terms]))
        more = r" + \dots" if self.d_head > shown_terms else ""
        return (rf"q \cdot k = \sum_{{d=0}}^{{{self.d_head - 1}}} q_d k_d = {terms}{more} = {self.raw:.4f}, \qquad "
                rf"\frac{{q \cdot k}}{{\sqrt{{{self.d_head}}}}} = {self.scaled:.4f}")


def dot_product(att: AttentionTrace, head: int, query: int, key: int) -> DotProduct:
    """The numbers behind attention score [head, query, key] of one traced attention."""
    n_heads, n_kv = att.q.shape[1], att.k.shape[1]
    kv_head = kv_head_of(head, n_heads, n_kv)
    q = att.q[0, head, query].numpy().astype(np.float64)  # (Dh,)
    k = att.k[0, kv_head, key].numpy().astype(np.float64)  # (Dh,)
    allowed = True if att.mask is None else bool(att.mask.expand(att.weights.shape)[0, head, query, key])
    return DotProduct(q, k, q * k, float(att.raw_scores[0, head, query, key]),
                      float(att.scaled_scores[0, head, query, key]), q.shape[0], kv_head, allowed,
                      float(att.weights[0, head, query, key]))
