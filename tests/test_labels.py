"""The label and hover builders of explain/labels.py and viz/panels.py: one convention, named hover text."""

from __future__ import annotations

import numpy as np
import pytest

from explain.labels import (
    TokenLabel,
    hover_name,
    hover_text,
    prompt_rows,
    row_labels,
    special_token_note,
    token_labels,
    vocabulary_label,
)
from viz.panels import WEIGHTS_HOVER, Hover, Panel, heatmap_spec, plot_matrix


def test_row_labels_say_what_a_row_reads_and_predicts():
    labels = row_labels(["7", "6", "5"], ["6", "5", "4"], prompt_length=2)
    assert labels == ["0:7 → 6", "1:6 → 5", "2:5 → 4"]
    assert [label.from_prompt for label in labels] == [True, True, False]
    assert prompt_rows(labels) == 2
    assert labels[0].hover == "0 '7' (predicts '6')"


def test_row_labels_need_one_prediction_per_row():
    with pytest.raises(ValueError, match="one prediction per row"):
        row_labels(["a", "b"], ["b"], 1)


def test_token_labels_stay_plain_strings_and_show_invisible_tokens():
    labels = token_labels(["the", " ", "\n"], prompt_length=3)
    assert labels == ["0:the", "1:␣", "2:⏎"] and all(isinstance(label, str) for label in labels)
    assert prompt_rows(labels) is None  # all from the prompt: no line to draw
    assert hover_name(labels[1]) == "1 '␣'" and hover_name("plain") == "plain"
    assert TokenLabel(3, "x") == "3:x" and {TokenLabel(3, "x"): 1}["3:x"] == 1


def test_rows_and_columns_of_the_same_tokens_are_the_same_axis():
    from explain.labels import same_tokens

    assert same_tokens(row_labels(["a", "b"], ["b", "c"], 1), token_labels(["a", "b"]))
    assert not same_tokens(token_labels(["a", "b"]), token_labels(["a", "c"])) and same_tokens(["x"], ["x"])


def test_hover_text_names_what_it_shows():
    assert hover_text("query", "12 '1'", "key", "2 '4'", "weight", 0.93541) == "query 12 '1' → key 2 '4': weight 0.935"
    assert hover_text("query", "1 'a'", "key", "2 'b'", "weight", None) == "query 1 'a' → key 2 'b': masked"


def test_vocabulary_labels_use_no_colon():
    assert vocabulary_label(143, "Exit") == "Exit (id 143)"
    assert ":" not in vocabulary_label(7, " ")


def test_special_tokens_are_explained_once_in_order():
    note = special_token_note(["<s>", "a", " ", "<unk>", " ", "</s>"])
    assert note.index("`<s>`") < note.index("`␣`") < note.index("`<unk>`") < note.index("`</s>`")
    assert note.count("`␣`") == 1 and special_token_note(["a", "b"]) == ""


def test_heatmap_hover_names_query_key_and_weight():
    rows = row_labels(["1", "4"], ["4", "1"], prompt_length=1)
    cols = token_labels(["1", "4"], prompt_length=1)
    weights = np.array([[1.0, 0.0], [0.0646, 0.9354]])
    allowed = np.array([[True, False], [True, True]])
    spec = heatmap_spec(Panel(weights, "w", rows, cols, allowed, signed=False, hover=WEIGHTS_HOVER))
    assert spec["customdata"][1, 1] == "query 1 '4' (predicts '1') → key 1 '4': weight 0.935"
    assert spec["customdata"][0, 1] == "query 0 '1' (predicts '4') → key 1 '4': masked"


def test_plain_panels_hover_through_a_template():
    spec = heatmap_spec(Panel(np.ones((2, 3)), "p", ["0:a", "1:b"], ["0:x", "1:y", "2:z"], hover=WEIGHTS_HOVER))
    assert "customdata" not in spec and spec["hovertemplate"].startswith("query %{y} → key %{x}: weight %{z:.3f}")
    rows = row_labels(["a", "b"], ["b", "c"], 2)  # a row's own arrow: the columns are joined with a comma
    spec = heatmap_spec(Panel(np.ones((2, 3)), "Q", rows, None, hover=Hover("query", "dimension", "q")))
    assert "customdata" not in spec and spec["hovertemplate"].startswith("query %{y}, dimension %{x}: q %{z:.3f}")


def test_the_prompt_end_is_drawn_as_a_dashed_line():
    rows = row_labels(["1", "4", "4"], ["4", "4", "1"], prompt_length=2)
    fig = plot_matrix(Panel(np.eye(3), "w", rows, token_labels(["1", "4", "4"], 2), signed=False), "t")
    dashed = [s for s in fig.layout.shapes if s.line.dash == "dash"]
    assert {(s.y0, s.y1) for s in dashed if s.type == "line" and s.y0 == s.y1} == {(1.5, 1.5)}
    assert {(s.x0, s.x1) for s in dashed if s.x0 == s.x1} == {(1.5, 1.5)}
