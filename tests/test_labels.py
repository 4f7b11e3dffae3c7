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


# ------------------------------------------------------------------ accuracy-by-position axes


def test_accuracy_ticks_name_what_each_position_reads_and_is_scored_on():
    from explain.labels import accuracy_ticks

    assert accuracy_ticks(["<s>", "a", "b"]) == ("0:<s> → a", "1:a → b")
    assert accuracy_ticks([" ", "x"]) == ("0:␣ → x",)
    assert all(isinstance(tick, TokenLabel) for tick in accuracy_ticks(["a", "b", "c"]))
    assert prompt_rows(accuracy_ticks(["a", "b", "c"])) is None  # no prompt line on an accuracy axis
    with pytest.raises(ValueError, match="no position to score"):
        accuracy_ticks(["a"])


def test_the_reversal_axis_has_2n_minus_1_ticks_and_says_which_are_at_chance():
    from explain.labels import reversal_axis, reversal_sequence

    assert reversal_sequence(3) == ("a", "b", "c", "c", "b", "a")
    axis = reversal_axis(3, 0.1)
    assert axis.ticks == ("0:a → b", "1:b → c", "2:c → c", "3:c → b", "4:b → a")
    assert "Positions 0 to 1" in axis.note and "1 in 10" in axis.note and "from position 2 on" in axis.note
    two = reversal_axis(2, 1 / 64)
    assert two.ticks == ("0:a → b", "1:b → b", "2:b → a") and "Position 0 must" in two.note and "1 in 64" in two.note
    assert len(reversal_axis(16, 0.1).ticks) == 31 and len(set(reversal_axis(30, 0.1).ticks)) == 59
    with pytest.raises(ValueError, match="at least 2 symbols"):
        reversal_sequence(1)


def test_the_dates_axis_follows_the_target_format_between_start_and_end():
    from explain.labels import dates_axis
    from model.tasks.dates import TARGET_FORMAT

    axis = dates_axis(TARGET_FORMAT, "<s>", "</s>")
    assert axis.ticks[0] == "0:<s> → y" and axis.ticks[4] == "4:y → -" and axis.ticks[-1] == "10:d → </s>"
    assert len(axis.ticks) == 11 and "No position is at chance" in axis.note and "`</s>`" in axis.note


def test_the_three_accuracy_charts_use_the_same_ticks():
    from explain.compare import FamilyQuality, ModelQuality
    from explain.experiments import PositionAccuracy
    from explain.labels import ACCURACY_POSITION_AXIS, reversal_axis
    from viz.figures_compare import plot_position_accuracy
    from viz.figures_experiments import plot_accuracy_by_position as plot_heads_off
    from viz.figures_training import plot_accuracy_by_position as plot_train

    n, chance, values = 3, 0.1, (0.1, 0.2, 1.0, 1.0, 1.0)
    axis = reversal_axis(n, chance)
    record = PositionAccuracy(axis.ticks, values, 1.0, "accuracy on the reversed half", chance, n - 1, axis.note)
    figures = [plot_train(list(values), n, chance, 5), plot_heads_off(record, record, "t"),
               plot_position_accuracy(FamilyQuality("reversal", ("m",), 0, (ModelQuality("m", accuracy_by_position=values),), n,
                                                 chance))]
    for fig in figures:
        assert tuple(fig.data[0].x) == axis.ticks
        assert fig.layout.xaxis.title.text == ACCURACY_POSITION_AXIS and fig.layout.xaxis.type == "category"
    with pytest.raises(ValueError, match="scores 5 positions"):
        plot_train([0.5] * 4, n, chance, 5)


# ------------------------------------------------------------------ rows of the experiment and KV views


def test_kv_prefill_rows_say_what_each_prompt_token_predicts():
    import torch

    from explain.generation import generation_view, step_with
    from model import load_checkpoint
    from model.generation_trace import GenerationSession
    from model.sampling import SamplingSettings

    checkpoint = load_checkpoint("checkpoints/reversal-mha")
    ids = checkpoint.tokenizer.encode("3 1 4 1 5 9 2 6")
    session = GenerationSession(checkpoint.model.eval(), ids, time_repeats=1)
    step_with(session, SamplingSettings())
    view = generation_view(checkpoint, session)
    rows = view.prefill_row_labels
    full = checkpoint.model(torch.tensor([ids]))[0].argmax(-1).tolist()  # (T,) the uncached pass
    assert [row.predicts for row in rows] == [checkpoint.tokenizer.id_to_token(i) for i in full]
    assert rows[0].startswith("0:3 → ") and prompt_rows(rows) is None  # the prefill is all prompt
    assert rows[-1].predicts == checkpoint.tokenizer.id_to_token(session.steps[0].chosen)  # greedy: the same token
