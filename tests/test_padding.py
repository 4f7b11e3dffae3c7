"""A padded batch: padded keys get weight 0, positions count real tokens, real positions equal each row alone."""

from __future__ import annotations

import pytest
import torch

from model import trace
from model.masks import position_ids
from tests.conftest import tiny_gpt, tiny_transformer

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KV_HEADS = [4, 2, 1]
PAD = 0


def pad_batch(rows: list[list[int]], side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """ids (B, T) and attention_mask (B, T), True for real tokens, padded on `side`."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), PAD, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for b, row in enumerate(rows):
        span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[b, span], mask[b, span] = torch.tensor(row), True
    return ids, mask


ROWS = [[5, 3, 8, 1, 2, 9, 4], [7, 2, 6]]


def test_positions_count_real_tokens_only():
    _, left = pad_batch(ROWS, "left")
    _, right = pad_batch(ROWS, "right")
    assert position_ids(left, 7)[1].tolist() == [0, 0, 0, 0, 0, 1, 2]
    assert position_ids(right, 7)[1].tolist()[:3] == [0, 1, 2]
    assert position_ids(left, 7)[0].tolist() == list(range(7))


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal", "rope"])
@pytest.mark.parametrize("n_kv_heads", KV_HEADS)
def test_padded_rows_equal_each_row_alone(side, pos_encoding, n_kv_heads):
    model = tiny_gpt(n_kv_heads, pos_encoding=pos_encoding)
    ids, mask = pad_batch(ROWS, side)
    for logits in (model(ids, attention_mask=mask), model(ids, attention_mask=mask, return_trace=True)[0]):
        assert not torch.isnan(logits).any()
        for b, row in enumerate(ROWS):
            alone = model(torch.tensor([row]))[0]  # (T_b, V)
            assert torch.allclose(logits[b][mask[b]], alone, atol=1e-5)


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_keys_get_weight_exactly_zero(side):
    model = tiny_gpt(2)
    ids, mask = pad_batch(ROWS, side)
    record = trace(model, ids, attention_mask=mask)
    for layer in record.decoder.layers:
        weights = layer.self_attention.weights  # (B, H, T, T)
        assert torch.all(weights[1][:, :, ~mask[1]] == 0)
        real_rows = weights[1][:, mask[1]]  # (H, T_real, T) rows of real queries
        assert torch.allclose(real_rows.sum(-1), torch.ones_like(real_rows.sum(-1)), atol=1e-6)
        assert not torch.isnan(weights).any()


def test_a_fully_padded_query_row_attends_to_nothing_on_both_paths():
    """Left padding: the first pad query has no key at all. Its weights and head output are 0, never NaN."""
    model = tiny_gpt(1)
    ids, mask = pad_batch(ROWS, "left")
    record = trace(model, ids, attention_mask=mask)
    att = record.decoder.layers[0].self_attention
    assert torch.all(att.weights[1, :, 0] == 0) and torch.all(att.head_outputs[1, :, 0] == 0)
    assert not torch.isnan(model(ids, attention_mask=mask)).any()


@pytest.mark.parametrize("n_kv_heads", KV_HEADS)
@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("pos_encoding", ["learned", "rope"])
def test_generate_a_left_padded_batch_like_each_row_alone(n_kv_heads, use_cache, pos_encoding):
    model = tiny_gpt(n_kv_heads, pos_encoding=pos_encoding)
    ids, mask = pad_batch(ROWS, "left")
    out = model.generate(ids, 6, use_cache=use_cache, attention_mask=mask)  # (B, T + 6)
    for b, row in enumerate(ROWS):
        alone = model.generate(torch.tensor([row]), 6, use_cache=use_cache)[0]
        assert out[b, -6:].tolist() == alone[-6:].tolist()


def test_a_mask_of_the_wrong_shape_or_type_is_refused():
    model = tiny_gpt()
    ids, mask = pad_batch(ROWS, "left")
    with pytest.raises(ValueError, match="attention_mask"):
        model(ids, attention_mask=mask[:, 1:])
    with pytest.raises(ValueError, match="bool"):
        model(ids, attention_mask=mask.long())


@pytest.mark.parametrize("n_kv_heads", KV_HEADS)
def test_encoder_decoder_padded_source_equals_each_alone(n_kv_heads):
    model = tiny_transformer(n_kv_heads)
    sources = [[5, 3, 8, 11, 4, 9], [7, 12, 6]]
    src, _ = pad_batch(sources, "right")
    tgt = torch.randint(3, 11, (2, 4))
    logits = model(src, tgt, src_pad_id=PAD)
    for b, row in enumerate(sources):
        alone = model(torch.tensor([row]), tgt[b:b + 1], src_pad_id=PAD)[0]
        assert torch.allclose(logits[b], alone, atol=1e-5)


def test_a_key_mask_hides_keys_without_renumbering_positions():
    model = tiny_gpt(2)
    idx = torch.randint(0, 13, (1, 6))
    hide = torch.ones(1, 6, dtype=torch.bool)
    hide[0, 2] = False
    record = trace(model, idx, key_mask=hide)
    plain = trace(model, idx)
    weights = record.decoder.layers[0].self_attention.weights
    assert torch.all(weights[0, :, :, 2] == 0)
    assert torch.allclose(weights[0, :, 3:].sum(-1), torch.ones(4, 3), atol=1e-6)  # renormalised
    assert torch.equal(record.decoder.embedding.summed, plain.decoder.embedding.summed)  # same positions
    assert torch.allclose(model(idx, key_mask=hide), record.logits, atol=1e-6)
    assert torch.allclose(record.logits[0, :2], plain.logits[0, :2], atol=1e-6)  # before the hidden token


def test_a_source_key_mask_hides_source_tokens_from_encoder_and_cross_attention():
    model = tiny_transformer(2)
    src, tgt = torch.randint(3, 15, (1, 6)), torch.randint(3, 11, (1, 3))
    hide = torch.ones(1, 6, dtype=torch.bool)
    hide[0, 4] = False
    record = trace(model, src=src, tgt=tgt, key_mask=hide)
    assert torch.all(record.encoder.layers[0].self_attention.weights[..., 4] == 0)
    assert torch.all(record.decoder.layers[1].cross_attention.weights[..., 4] == 0)
    assert torch.allclose(model(src, tgt, src_key_mask=hide), record.logits, atol=1e-6)
