"""The explanation layer's records hold the numbers the model itself computed.

Each record is checked against an independent computation: the cache breakdown against the bytes
of the model's own cache, a dot product against the traced score, shapes against the weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from explain.attention import attention_shapes, dot_product
from explain.cache import CacheBreakdown, attention_summary, calculate, preset_rows
from explain.compare import Family, families, shared_layers
from explain.embeddings import embedding_facts, positional_table, project_vocabulary, sinusoidal
from explain.generation import cache_tensors, generation_view
from explain.models import describe_checkpoint, model_card
from explain.trace import prepare_trace
from model import load_checkpoint
from model.generation_trace import session_for
from model.kv_math import PRESETS

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints"


@pytest.fixture(scope="module")
def reversal_gqa():
    return load_checkpoint(SHIPPED / "reversal-gqa")


@pytest.fixture(scope="module")
def dates():
    return load_checkpoint(SHIPPED / "dates")


@pytest.mark.parametrize("name", ["reversal-mha", "reversal-gqa", "reversal-mqa", "dates", "shakespeare-mqa"])
def test_the_cache_record_equals_the_models_own_cache(name):
    checkpoint = load_checkpoint(SHIPPED / name)
    ids = checkpoint.tokenizer.encode({"dates": "25 december 2023", "shakespeare-mqa": "to be or not"}.get(
        name, "3 1 4 1 5 9 2 6"))
    session = session_for(checkpoint, ids)
    for _ in range(3):
        session.step()
    view = generation_view(checkpoint, session)
    cache = view.cache
    assert cache.total_bytes == session.cache.nbytes - (view.cross_cache_bytes or 0) == view.last.cache_bytes
    assert cache.total_bytes == 2 * cache.n_layers * cache.per_layer_k_bytes
    keys, values = cache_tensors(session, 0)
    assert keys.nbytes == values.nbytes == cache.per_layer_k_bytes
    factors = [int(x.replace(",", "")) for x in cache.formula.split(" bytes")[0].split(" × ")]
    assert math.prod(factors) == cache.total_bytes and f"{cache.total_bytes:,} bytes" in cache.formula
    own = next(c for c in view.curves if c.n_kv_heads == checkpoint.config.n_kv_heads)
    assert own.bytes_by_step == view.measured_bytes  # the formula line of this model's variant is the measured one
    assert len(view.labels) == session.fed and view.generated and len(view.steps) == 3


def test_cache_breakdown_counts_k_and_v_of_every_layer():
    breakdown = CacheBreakdown(n_layers=2, n_heads=4, n_kv_heads=2, d_head=8, tokens=5, batch=1, bytes_per_element=4)
    assert breakdown.total_bytes == 2 * 2 * 2 * 8 * 5 * 4 and breakdown.variant == "GQA"


def test_dot_product_and_shapes_come_from_the_trace(reversal_gqa):
    prepared = prepare_trace(reversal_gqa, "3 1 4 1 5 9 2 6")
    att = prepared.attention("self")[1]
    shapes = attention_shapes(prepared, reversal_gqa, "self", 1)
    module = reversal_gqa.model.decoder.layers[1].self_attn
    assert (shapes.n_queries, shapes.n_heads, shapes.n_kv_heads) == (len(prepared.tokens), 4, 2)
    assert [p.matrix for p in shapes.projections] == ["W_Q", "W_K", "W_V", "W_O"]
    assert f"{module.d_model} × {shapes.n_kv_heads * shapes.d_head}" in shapes.projections[1].shape
    assert shapes.d_head_formula == f"d_head = d_model / H = 128 / 4 = {shapes.d_head}"
    for head in range(shapes.n_heads):
        dp = dot_product(att, head, 5, 2)
        assert dp.kv_head == shapes.kv_head_of(head) == head // 2
        assert dp.raw == pytest.approx(float(att.raw_scores[0, head, 5, 2]), abs=1e-4)
        assert dp.raw == pytest.approx(float(np.dot(dp.q, dp.k)), abs=1e-4)
        assert dp.scaled == pytest.approx(dp.raw / math.sqrt(shapes.d_head), abs=1e-5)
    assert not dot_product(att, 0, 2, 5).allowed and dot_product(att, 0, 2, 5).weight == 0.0
    assert f"{dp.raw:.4f}" in dp.latex()


def test_token_table_and_labels(reversal_gqa):
    prepared = prepare_trace(reversal_gqa, "3 1 4 1 5 9 2 6")
    rows = prepared.token_table()
    assert [r.position for r in rows] == list(range(15)) and prepared.answer_starts_inside
    assert [r.written_by for r in rows].count("you") == 8
    assert [r.id for r in rows] == prepared.source_stack.embedding.ids[0].tolist()


def test_embedding_records(reversal_gqa, dates):
    facts = embedding_facts(dates)
    assert facts.scale == pytest.approx(math.sqrt(128)) and embedding_facts(reversal_gqa).scale is None
    table = positional_table(dates)
    assert np.allclose(table, sinusoidal(dates.config.max_len, 128), atol=1e-6)
    assert positional_table(reversal_gqa).shape == (reversal_gqa.config.max_len, 128)
    projection = project_vocabulary(reversal_gqa)
    assert projection.coords.shape == (reversal_gqa.tokenizer.vocab_size, 2) and sum(projection.explained) <= 1.0


def test_calculator_and_presets_use_one_variant_rule():
    results = calculate(80, 64, 8, 128, 4096, 1, "float16")
    assert [(r.label, r.total_bytes) for r in results] == [
        ("MHA (64 K/V heads)", 2 * 80 * 64 * 128 * 4096 * 2), ("GQA (8 K/V heads)", 2 * 80 * 8 * 128 * 4096 * 2),
        ("MQA (1 K/V head)", 2 * 80 * 128 * 4096 * 2)]
    assert calculate(80, 64, 7, 128, 1, 1, "float16")[1].n_kv_heads == 16  # 7 does not divide 64: the rule picks
    rows = preset_rows()
    assert [r.model for r in rows] == list(PRESETS)
    assert rows[2].gib_full_context == 2.0  # Llama-2-7B at 4096 tokens in float16


def test_comparison_records(reversal_gqa):
    summary = attention_summary("reversal-gqa", reversal_gqa.config, reversal_gqa.model.num_parameters)
    assert (summary.attention, summary.n_heads, summary.n_kv_heads) == ("GQA", 4, 2)
    names = ["reversal-mha", "reversal-gqa", "dates", "shakespeare-mha"]
    assert families(names) == (Family("reversal", ("reversal-mha", "reversal-gqa")),)
    assert shared_layers([reversal_gqa]) == reversal_gqa.config.n_layers


def test_model_card_and_home_row(reversal_gqa):
    card = model_card(reversal_gqa, own=True)
    assert card.lines[0].endswith("your own model") and "(GQA)" in card.lines[1]
    row = describe_checkpoint("reversal-gqa", "shipped", SHIPPED / "reversal-gqa", None)
    assert (row.task, row.heads, row.layers) == ("reversal", "4 / 2 (GQA)", "2")
    broken = describe_checkpoint("x", "user", SHIPPED / "no-such-folder", None)
    assert broken.purpose.startswith("cannot be read") and broken.task == ""
