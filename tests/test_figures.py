"""Figure builders (viz/figures*.py): shapes, unique labels, masked cells, one figure per layer and head."""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from conftest import tiny_gpt, tiny_transformer

from model import trace
from viz.figures import (
    plot_attention_input,
    plot_attention_weights,
    plot_concat_output,
    plot_dot_product,
    plot_head_grid,
    plot_head_output,
    plot_layer_grid,
    plot_qkv,
    plot_scores,
)
from viz.figures_embeddings import (
    cosine_similarity,
    plot_cosine_similarity,
    plot_embedding_sum,
    plot_position_similarity,
    plot_positional_curves,
    plot_positional_matrix,
    plot_token_embeddings,
    plot_vocab_scatter,
    token_group,
)
from viz.panels import Panel, allowed_matrix, heatmap_trace, plot_matrix, plotly_labels

IDS = [3, 5, 3, 3, 7, 5, 1, 3]  # repeated tokens on purpose: their labels must not merge
TOKENS = ["the", "<img src=x onerror=alert(1)>", "the", "the", "</script>", "<img src=x onerror=alert(1)>", "a", "the"]
LABELS = [f"{i}:{t}" for i, t in enumerate(TOKENS)]


def heatmaps(fig: go.Figure) -> list[go.Heatmap]:
    """The data heatmaps of a figure (not the flat grey layers under masked cells)."""
    return [t for t in fig.data if isinstance(t, go.Heatmap) and t.name != "masked"]


@pytest.fixture(scope="module", params=[4, 2, 1], ids=["mha", "gqa", "mqa"])
def gpt_trace(request):
    torch.manual_seed(0)
    model = tiny_gpt(n_kv_heads=request.param)
    return model, trace(model, torch.tensor([IDS]))


@pytest.fixture(scope="module")
def seq2seq_trace():
    torch.manual_seed(0)
    model = tiny_transformer(n_kv_heads=2)
    src = torch.tensor([[4, 9, 4, 2, 0, 0]])  # two pad tokens (id 0) at the end
    tgt = torch.tensor([[1, 5, 5, 6]])
    return model, trace(model, src=src, tgt=tgt, src_pad_id=0)


def test_labels_must_be_unique_and_are_escaped():
    with pytest.raises(ValueError, match="unique"):
        plotly_labels(["the", "cat", "the"])
    assert plotly_labels(["0:<b>", "1:&"]) == ["0:&lt;b&gt;", "1:&amp;"]


def test_duplicate_tokens_keep_one_row_each(gpt_trace):
    _, record = gpt_trace
    fig = plot_attention_weights(record.decoder.layers[0].self_attention, 0, LABELS, LABELS, "w")
    (trace_,) = heatmaps(fig)
    assert len(trace_.y) == len(set(trace_.y)) == len(IDS)
    assert len(trace_.x) == len(set(trace_.x)) == len(IDS)
    assert "&lt;img src=x onerror=alert(1)&gt;" in trace_.y[1]
    assert fig.layout.yaxis.type == "category" and fig.layout.xaxis.type == "category"


def test_masked_cells_are_nan_and_say_masked(gpt_trace):
    _, record = gpt_trace
    att = record.decoder.layers[1].self_attention
    fig = plot_attention_weights(att, 1, LABELS, LABELS, "w")
    z = np.array(heatmaps(fig)[0].z, dtype=float)
    hover = np.array(heatmaps(fig)[0].customdata)
    future = np.triu(np.ones((len(IDS), len(IDS)), dtype=bool), k=1)
    assert np.isnan(z[future]).all() and not np.isnan(z[~future]).any()
    masked = np.char.endswith(hover.astype(str), ": masked")
    assert masked[future].all() and not masked[~future].any()
    grey = [t for t in fig.data if t.name == "masked"]
    assert len(grey) == 1 and np.isnan(np.array(grey[0].z, dtype=float)[~future]).all()
    np.testing.assert_allclose(np.nansum(z, axis=1), 1.0, atol=1e-5)  # allowed weights still sum to one


def test_unmasked_panel_has_no_grey_layer():
    fig = plot_matrix(Panel(np.ones((2, 3)), "p", ["0:a", "1:b"], ["0:x", "1:y", "2:z"]), "t")
    assert [t.name for t in fig.data] == ["p"]
    # plotly formats the hovered value itself: no per-cell hover text to send to the browser
    assert fig.data[0].customdata is None and "%{z:.3f}" in fig.data[0].hovertemplate


def test_masked_panel_hover_text_is_the_value_or_masked(gpt_trace):
    _, record = gpt_trace
    att = record.decoder.layers[0].self_attention
    fig = plot_attention_weights(att, 2, LABELS, LABELS, "w")
    trace = heatmaps(fig)[0]
    assert "%{customdata}" in trace.hovertemplate
    weights = att.weights[0, 2].numpy()
    for (r, c), text in np.ndenumerate(np.array(trace.customdata)):
        expected = "masked" if c > r else f"weight {weights[r, c]:.3f}"
        assert text == f"query {html.escape(LABELS[r], quote=False)} → key {html.escape(LABELS[c], quote=False)}: {expected}"


def test_allowed_matrix_broadcasts_padding_masks():
    padding = torch.tensor([True, True, False]).view(1, 1, 1, 3)  # (B, 1, 1, S)
    allowed = allowed_matrix(padding, n_heads=2, t_q=4, t_k=3)
    assert allowed.shape == (2, 4, 3) and not allowed[:, :, 2].any() and allowed[:, :, :2].all()
    assert allowed_matrix(None, 2, 4, 3).all()


def test_a_figure_for_every_layer_and_head(gpt_trace):
    model, record = gpt_trace
    n_layers, n_heads = model.config.n_layers, model.config.n_heads
    for layer in record.decoder.layers:
        att = layer.self_attention
        assert len(heatmaps(plot_head_grid(att, LABELS, LABELS, "grid"))) == n_heads
        for head in range(n_heads):
            for fig in (plot_attention_weights(att, head, LABELS, LABELS, "w"), plot_qkv(att, head, LABELS, LABELS),
                        plot_scores(att, head, LABELS, LABELS), plot_head_output(att, head, LABELS)):
                assert heatmaps(fig)
    all_layers = plot_layer_grid([layer.self_attention for layer in record.decoder.layers], LABELS, LABELS, "all")
    assert len(heatmaps(all_layers)) == n_layers * n_heads


def test_qkv_reads_the_shared_key_value_head(gpt_trace):
    model, record = gpt_trace
    att = record.decoder.layers[0].self_attention
    head = model.config.n_heads - 1
    kv_head = head // (model.config.n_heads // model.config.n_kv_heads)
    q, k, v = heatmaps(plot_qkv(att, head, LABELS, LABELS, query=2, key=3))
    d_head = model.config.d_model // model.config.n_heads
    assert np.array(q.z).shape == np.array(k.z).shape == np.array(v.z).shape == (len(IDS), d_head)
    np.testing.assert_allclose(np.array(k.z), att.k[0, kv_head].numpy(), rtol=1e-6)
    assert f"kv head {kv_head}" in k.name


def test_scores_panels_are_the_traced_steps(gpt_trace):
    _, record = gpt_trace
    att = record.decoder.layers[0].self_attention
    raw, scaled, masked = heatmaps(plot_scores(att, 0, LABELS, LABELS, query=1, key=0))
    np.testing.assert_allclose(np.array(raw.z), att.raw_scores[0, 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(np.array(scaled.z), att.scaled_scores[0, 0].numpy(), rtol=1e-6)
    assert np.isnan(np.array(masked.z, dtype=float)[0, 1])
    limit = float(att.raw_scores[0, 0].abs().max())  # one colour scale: the scaled panels look paler
    assert [(p.zmin, p.zmax) for p in (raw, scaled, masked)] == [pytest.approx((-limit, limit), rel=1e-6)] * 3


def test_concat_and_output_shapes(gpt_trace):
    model, record = gpt_trace
    att = record.decoder.layers[0].self_attention
    concat, output = heatmaps(plot_concat_output(att, LABELS, query=0))
    assert np.array(concat.z).shape == (len(IDS), model.config.d_model)
    assert np.array(output.z).shape == (len(IDS), model.config.d_model)


def test_cross_attention_is_target_by_source_with_padding_masked(seq2seq_trace):
    model, record = seq2seq_trace
    src_labels = [f"{i}:s{i}" for i in range(6)]
    tgt_labels = [f"{i}:t{i}" for i in range(4)]
    for layer in record.decoder.layers:
        fig = plot_head_grid(layer.cross_attention, tgt_labels, src_labels, "cross")
        for heat in heatmaps(fig):
            z = np.array(heat.z, dtype=float)
            assert z.shape == (4, 6)
            assert np.isnan(z[:, 4:]).all() and not np.isnan(z[:, :4]).any()
    encoder = plot_head_grid(record.encoder.layers[0].self_attention, src_labels, src_labels, "encoder")
    assert all(np.isnan(np.array(h.z, dtype=float)[:, 4:]).all() for h in heatmaps(encoder))
    x_fig = plot_attention_input(record.decoder.layers[0].cross_residual.normed, record.encoder.output,
                                 tgt_labels, src_labels, cross=True)
    assert [np.array(h.z).shape for h in heatmaps(x_fig)] == [(4, model.config.d_model), (6, model.config.d_model)]


def test_dot_product_bars_sum_to_the_score():
    q, k = np.array([1.0, -2.0, 0.5]), np.array([2.0, 1.0, 4.0])
    fig = plot_dot_product(q, k, "q . k")
    products = np.array(fig.data[2].y)
    np.testing.assert_allclose(products, q * k)
    assert "2.0000" in fig.layout.annotations[1].text


def test_embedding_figures(gpt_trace):
    model, record = gpt_trace
    emb = record.decoder.embedding
    assert np.array(heatmaps(plot_token_embeddings(emb.token_embeddings[0], LABELS, "e"))[0].z).shape == (8, 32)
    similarity = np.array(heatmaps(plot_cosine_similarity(emb.token_embeddings[0], LABELS))[0].z)
    np.testing.assert_allclose(np.diag(similarity), 1.0, atol=1e-6)
    np.testing.assert_allclose(similarity[0, 2], 1.0, atol=1e-6)  # the same token twice
    summed = plot_embedding_sum(emb.token_embeddings[0], emb.positional, emb.summed[0], LABELS, "learned")
    assert len(heatmaps(summed)) == 3
    assert len(heatmaps(plot_embedding_sum(emb.token_embeddings[0], None, emb.summed[0], LABELS, "none"))) == 2


def test_cosine_similarity_of_a_zero_row_is_zero():
    assert cosine_similarity(np.array([[0.0, 0.0], [1.0, 0.0]]))[0].tolist() == [0.0, 0.0]


def test_vocab_scatter_draws_every_token_once():
    tokens = [str(i) for i in range(10)] + ["a", "b", "<s>", ",", "␣"]
    coords = np.random.default_rng(0).normal(size=(len(tokens), 2))
    fig = plot_vocab_scatter(coords, tokens, (0.4, 0.2), highlight=["3"])
    assert sum(len(t.x) for t in fig.data) == len(tokens)
    assert {t.name for t in fig.data} == {"digit", "letter", "special", "punctuation", "space"}
    special = next(t for t in fig.data if t.name == "special")
    assert isinstance(special, go.Scatter) and list(special.text) == ["&lt;s&gt;"]  # SVG text: escaped, drawn as <s>
    with pytest.raises(ValueError):
        plot_vocab_scatter(coords[:3], tokens, (0.4, 0.2))
    big = [f"w{i}" for i in range(500)]
    fig = plot_vocab_scatter(np.zeros((500, 2)), big, (0.1, 0.1), highlight=["w7"])
    assert fig.data[-1].name == "in your input" and len(fig.data[-1].x) == 1


def test_token_groups():
    assert [token_group(t) for t in ["7", "m", "month", "<pad>", ",", "␣"]] == [
        "digit", "letter", "word", "special", "punctuation", "space"]


def test_positional_figures():
    table = torch.randn(12, 8)
    assert np.array(heatmaps(plot_positional_matrix(table, "pe"))[0].z).shape == (12, 8)
    similarity = np.array(heatmaps(plot_position_similarity(table, "sim"))[0].z)
    np.testing.assert_allclose(similarity, similarity.T, rtol=1e-6)
    assert len(plot_positional_curves(table, [0, 3, 7]).data) == 3
    with pytest.raises(ValueError):
        plot_positional_curves(table, [8])


def test_heatmap_refuses_labels_that_do_not_fit():
    with pytest.raises(ValueError, match="labels"):
        heatmap_trace(Panel(np.zeros((2, 2)), "p", ["0:a"], ["0:a", "1:b"]))


@pytest.mark.parametrize("rows, cols, h_space, v_space", [(1, 1, 0.02, 0.0), (1, 3, 0.10, 0.0), (2, 4, 0.04, 0.12),
                                                          (3, 4, 0.04, 0.1), (1, 8, 0.04, 0.3)])
def test_panel_grid_lays_out_like_make_subplots(rows, cols, h_space, v_space):
    """viz.panels.PanelGrid builds the layout as dicts, for speed: the axes and titles of make_subplots."""
    from plotly.subplots import make_subplots

    from viz.panels import PanelGrid

    titles = [f"panel <{i}>" for i in range(rows * cols)]
    reference = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=h_space,
                              vertical_spacing=v_space).to_dict()["layout"]
    built = PanelGrid(rows, cols, titles, h_space, v_space).figure(height=300).to_dict()["layout"]
    axes = sorted(k for k in reference if k.startswith(("xaxis", "yaxis")))
    assert axes == sorted(k for k in built if k.startswith(("xaxis", "yaxis")))
    for name in axes:
        assert built[name]["anchor"] == reference[name]["anchor"], name
        assert built[name]["domain"] == pytest.approx(reference[name]["domain"], abs=1e-12), name
    assert len(built["annotations"]) == len(reference["annotations"])
    for ours, theirs in zip(built["annotations"], reference["annotations"]):
        assert ours["text"] == theirs["text"].replace("<", "&lt;").replace(">", "&gt;")  # ours escapes the titles
        for field in ("x", "y"):
            assert ours[field] == pytest.approx(theirs[field], abs=1e-12)
        for field in ("xanchor", "yanchor", "xref", "yref", "showarrow", "font"):
            assert ours[field] == theirs[field], field


def test_panels_sit_on_their_own_axes_with_outlines_and_boundaries(gpt_trace):
    """Each panel's heatmap, masked layer and outline refer to the panel's own axes."""
    _, record = gpt_trace
    att = record.decoder.layers[0].self_attention
    fig = plot_scores(att, 1, LABELS, LABELS, query=2, key=5)
    assert [(t.xaxis, t.yaxis) for t in heatmaps(fig)] == [("x", "y"), ("x2", "y2"), ("x3", "y3")]
    masked = [t for t in fig.data if t.name == "masked"]
    assert [(t.xaxis, t.yaxis) for t in masked] == [("x3", "y3")]  # only the third panel is masked
    outlines = [(s.xref, s.yref, s.x0, s.y0) for s in fig.layout.shapes if s.type == "rect"]
    assert outlines == [(x, y, 4.5, 1.5) for x, y in (("x", "y"), ("x2", "y2"), ("x3", "y3"))]
    assert all(fig.layout[f"yaxis{i}"].autorange == "reversed" for i in ("", "2", "3"))
    d_head = att.q.shape[-1]
    concat = plot_concat_output(att, LABELS, query=2)
    lines = [s for s in concat.layout.shapes if s.type == "line"]
    assert [s.x0 for s in lines] == [d_head * h - 0.5 for h in range(1, att.q.shape[1])]
    assert all(s.xref == "x" and s.yref == "y domain" for s in lines)
