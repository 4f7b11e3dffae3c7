"""The experiment records of the explanation layer against the model's own numbers."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from explain.experiments import HeadRef, ablate, accuracy_by_position, greedy_output, head_choice
from explain.hiding import hide_tokens
from explain.importance import MATTERS, ImportanceMap, importance_map
from explain.lens import lens_record
from explain.padding import default_second_input, pad_batch
from explain.trace import prepare_trace
from model import load_checkpoint, logit_lens

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def reversal():
    return load_checkpoint("checkpoints/reversal-gqa")


@pytest.fixture(scope="module")
def dates():
    return load_checkpoint("checkpoints/dates")


def zeroed_copy(checkpoint, refs):
    """The checkpoint with W_O's columns of these heads set to zero."""
    clone = copy.copy(checkpoint)
    clone.model = copy.deepcopy(checkpoint.model)
    d_head = clone.config.d_model // clone.config.n_heads
    for ref in refs:
        stack = clone.model.encoder if ref.kind == "encoder" else clone.model.decoder
        block = stack.layers[ref.layer]
        attn = block.cross_attn if ref.kind == "cross" else block.self_attn
        with torch.no_grad():
            attn.out_proj.weight[:, ref.head * d_head:(ref.head + 1) * d_head] = 0.0
    return clone


def test_a_choice_refuses_heads_the_model_does_not_have(reversal):
    with pytest.raises(ValueError, match="not a head"):
        head_choice(reversal, (HeadRef("self", 2, 0),))
    with pytest.raises(ValueError, match="not a head"):
        head_choice(reversal, (HeadRef("cross", 0, 0),))
    choice = head_choice(reversal, (HeadRef("self", 1, 2), HeadRef("self", 1, 2), HeadRef("self", 0, 1)))
    assert choice.off == (HeadRef("self", 0, 1), HeadRef("self", 1, 2)) and "layer 0 head 1" in choice.summary


@pytest.mark.parametrize("fixture, refs", [("reversal", [HeadRef("self", 0, 1), HeadRef("self", 0, 3)]),
                                           ("dates", [HeadRef("cross", 1, 2), HeadRef("encoder", 0, 0)])])
def test_a_switched_off_head_equals_zeroed_weights(request, fixture, refs):
    checkpoint = request.getfixturevalue(fixture)
    zeroed = zeroed_copy(checkpoint, refs)
    choice = head_choice(checkpoint, tuple(refs))
    masked, plain = accuracy_by_position(checkpoint, choice, 64), accuracy_by_position(zeroed, head_choice(zeroed), 64)
    assert np.allclose(masked.accuracy, plain.accuracy)
    text = "3 1 4 1 5 9 2 6" if fixture == "reversal" else "25 december 2023"
    ids = tuple(checkpoint.tokenizer.encode(text))
    assert greedy_output(checkpoint, ids, choice, 6) == greedy_output(zeroed, ids, head_choice(zeroed), 6)


def test_ablation_compares_intact_and_heads_off(reversal):
    choice = head_choice(reversal, head_choice(reversal).layer_heads("self", 0))
    result = ablate(reversal, "3 1 4 1 5 9 2 6", choice)
    assert result.output_intact == "6 2 9 5 1 4 1 3" and result.output_changed
    assert abs(sum(p.intact for p in result.probabilities) - 1) < 0.05


def test_importance_flags_a_redundant_layer():
    drops = ImportanceMap(("self",), "acc", 1.0, 0.1, np.array([[[0.0, 0.02, 0.0, 0.08], [0.0, 0.0, 0.3, 0.0]]]),
                          np.array([[0.88, 0.3]]))
    assert drops.redundant_layers() == (("self", 0),)
    assert drops.important_heads() == (HeadRef("self", 1, 2),)
    assert "layer 0 are redundant" in drops.findings()[0]


def test_importance_on_reversal_layer_zero_matters_as_a_whole(reversal):
    found = importance_map(reversal, 100)
    assert found.layer_drop[0, 0] >= MATTERS and found.head_drop[0, 0].max() < MATTERS
    assert ("self", 0) in found.redundant_layers()


@pytest.mark.parametrize("fixture, text", [("reversal", "3 1 4 1 5 9 2 6"), ("dates", "25 december 2023")])
@pytest.mark.parametrize("side", ["left", "right"])
def test_a_padded_row_equals_the_row_alone(request, fixture, text, side):
    checkpoint = request.getfixturevalue(fixture)
    prepared = prepare_trace(checkpoint, text)
    batch, notes = pad_batch(checkpoint, prepared, default_second_input(checkpoint, text), side)
    assert batch is not None and batch.max_difference < 1e-4
    assert not batch.real.all()  # something was padded
    for kind in prepared.kinds:
        for row in range(2):
            att = batch.attention(kind, 1, row)
            keys_real = batch.real[row] if kind != "decoder" else None
            if keys_real is not None:
                assert torch.all(att.weights[0][..., ~torch.from_numpy(keys_real)] == 0)
            assert batch.combined_mask(kind, row).shape == att.weights.shape[2:]
    if fixture == "reversal":
        assert batch.combined_mask("self", 0)[0, 1] == False  # noqa: E712  causal
    empty, notes = pad_batch(checkpoint, prepared, "", side)
    assert empty is None and notes[0].level == "error" and "Second input" in notes[0].message


def test_hiding_a_token_zeroes_its_column_and_changes_later_outputs(reversal):
    prepared = prepare_trace(reversal, "3 1 4 1 5 9 2 6")
    result = hide_tokens(reversal, prepared, (2,))
    for layer in result.record.decoder.layers:
        assert torch.all(layer.self_attention.weights[0, :, :, 2] == 0)
    assert np.allclose(result.distance[:2], 0, atol=1e-6)  # before the hidden token nothing can change
    assert result.top_changed[12]  # the answer position that mirrors position 2 loses its symbol
    nothing = hide_tokens(reversal, prepared, ())
    assert nothing.max_change < 1e-6 and "No token" in nothing.summary


@pytest.mark.parametrize("fixture, text", [("reversal", "3 1 4 1 5 9 2 6"), ("dates", "25 december 2023")])
def test_the_lens_record_reads_the_model(request, fixture, text):
    checkpoint = request.getfixturevalue(fixture)
    prepared = prepare_trace(checkpoint, text)
    record = lens_record(checkpoint, prepared)
    logits = logit_lens(checkpoint.model, prepared.trace)
    probs = torch.softmax(logits[:, 0], -1)
    assert np.allclose(record.top_probability, probs.max(-1).values.numpy(), atol=1e-6)
    final = prepared.trace.logits[0].argmax(-1)
    assert [checkpoint.tokenizer.id_to_token(i) for i in final.tolist()] == list(record.final_tokens)
    if fixture == "reversal":  # the mirrored symbol is on top from the layer where the mirror head writes it
        assert all(record.reading_of(t) == "after layer 0" for t in range(8, 15))
        assert record.final_tokens[7:] == tuple("62951413")


# ------------------------------------------------------------------ what the rows and positions mean


@pytest.mark.parametrize("fixture, first, last", [("reversal", "0:a → b", "14:b → a"), ("dates", "0:<s> → y", "10:d → </s>")])
def test_accuracy_positions_use_the_one_axis_and_carry_its_note(request, fixture, first, last):
    checkpoint = request.getfixturevalue(fixture)
    result = accuracy_by_position(checkpoint, head_choice(checkpoint), 32)
    assert len(result.positions) == len(result.accuracy)
    assert (result.positions[0], result.positions[-1]) == (first, last)
    assert ("Positions 0 to 6" in result.note) if fixture == "reversal" else ("No position is at chance" in result.note)


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_rows_say_what_they_predict_and_where_the_prompt_ends(reversal, side):
    from explain.labels import prompt_rows

    prepared = prepare_trace(reversal, "3 1 4 1 5 9 2 6")
    batch, _ = pad_batch(reversal, prepared, "7 2 6", side)
    rows = batch.query_labels("self", 0)
    assert [row.predicts for row in rows] == list(prepared.predictions)  # the row alone predicts the same
    assert prompt_rows(rows) == 8 and prompt_rows(batch.key_labels("self", 0)) == 8
    second = batch.query_labels("self", 1)
    pads = [label for label in second if label.token == "<pad>"]
    assert len(pads) == 12 and all(label.predicts is None for label in pads)  # a pad predicts nothing
    assert all(label.predicts is not None for label in second if label.token != "<pad>")
    assert prompt_rows(second) is None  # the second input is all prompt


def test_padded_decoder_rows_of_the_encoder_decoder(dates):
    from explain.labels import prompt_rows

    prepared = prepare_trace(dates, "25 december 2023")
    batch, _ = pad_batch(dates, prepared, "3 may 1999", "right")
    decoder = batch.query_labels("decoder", 0)
    assert decoder[0] == "0:<s> → 2" and prompt_rows(decoder) == 1 and prompt_rows(batch.key_labels("decoder", 0)) == 1
    assert all(label.predicts is None for label in batch.query_labels("encoder", 0))


def test_lens_and_hidden_rows_say_what_they_predict(reversal):
    from explain.labels import prompt_rows

    prepared = prepare_trace(reversal, "3 1 4 1 5 9 2 6")
    record = lens_record(reversal, prepared)
    assert [label.predicts for label in record.position_labels] == list(record.final_tokens)
    assert prompt_rows(record.position_labels) == 8 and record.writes_answer
    assert [label for label, _ in record.appearances()] == list(record.position_labels[7:])  # the answer's writers
    hidden = hide_tokens(reversal, prepared, (2,))
    assert hidden.position_labels == record.position_labels  # intact: the model's own predictions
    assert hidden.hidden_row_labels[12].predicts != hidden.position_labels[12].predicts  # the mirror loses it
    assert [row.written_by for row in hidden.rows[7:9]] == ["you", "the model"]
