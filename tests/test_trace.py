"""The trace is the forward pass: same logits, consistent intermediates, detached on the CPU."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import tiny_gpt, tiny_transformer
from model import causal_mask, trace


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_gpt_trace_reproduces_the_logits(n_kv_heads):
    model = tiny_gpt(n_kv_heads, norm_position="pre")
    idx = torch.randint(0, 13, (1, 9))
    record = trace(model, idx)
    torch.testing.assert_close(record.logits, model(idx), atol=1e-5, rtol=0)  # fast path agrees
    assert torch.equal(record.logits, model(idx, return_trace=True)[0])  # same computation, bit for bit
    assert not record.logits.requires_grad and record.logits.device.type == "cpu"


def test_gpt_trace_intermediates_are_consistent():
    model = tiny_gpt(2)
    idx = torch.randint(0, 13, (1, 9))
    record = trace(model, idx)
    emb = record.decoder.embedding
    assert torch.equal(emb.summed, emb.token_embeddings + emb.positional)
    layer0 = record.decoder.layers[0]
    attn = layer0.self_attention
    assert attn.q.shape == (1, 4, 9, 8) and attn.k.shape == (1, 2, 9, 8)
    d_head = 8
    torch.testing.assert_close(attn.scaled_scores, attn.raw_scores / math.sqrt(d_head))
    assert torch.equal(attn.mask, causal_mask(9))
    assert (attn.weights[..., ~causal_mask(9)] == 0).all()
    torch.testing.assert_close(attn.weights.sum(-1), torch.ones(1, 4, 9))
    # head h reads kv head h // 2: recompute head 3's output from the traced pieces
    torch.testing.assert_close(attn.head_outputs[0, 3], attn.weights[0, 3] @ attn.v[0, 1], atol=1e-6, rtol=0)
    assert attn.concatenated.shape == (1, 9, 32) and attn.output.shape == (1, 9, 32)
    assert torch.equal(layer0.attention_residual.residual_in, record.decoder.embedding.summed)
    assert torch.equal(record.decoder.layers[1].attention_residual.residual_in, layer0.feed_forward_residual.residual_out)
    assert layer0.feed_forward.hidden.shape == (1, 9, 128)
    assert len(record.decoder.layers) == 2 and layer0.cross_attention is None


def test_seq2seq_trace_has_all_three_attentions():
    model = tiny_transformer(2)
    src = torch.tensor([[3, 4, 5, 6, 0, 0]])
    tgt = torch.tensor([[1, 7, 8]])
    record = trace(model, src=src, tgt=tgt, src_pad_id=0)
    torch.testing.assert_close(record.logits, model(src, tgt, src_pad_id=0), atol=1e-5, rtol=0)
    enc = record.encoder.layers[0].self_attention
    dec = record.decoder.layers[0].self_attention
    cross = record.decoder.layers[0].cross_attention
    assert enc.weights.shape == (1, 4, 6, 6) and (enc.weights[..., 4:] == 0).all()
    assert dec.weights.shape == (1, 4, 3, 3) and (dec.weights[..., ~causal_mask(3)] == 0).all()
    assert cross.weights.shape == (1, 4, 3, 6) and (cross.weights[..., 4:] == 0).all()


def test_trace_leaves_training_mode_alone():
    model = tiny_gpt().train()
    trace(model, torch.randint(0, 13, (1, 4)))
    assert model.training


def test_trace_refuses_wrong_arguments():
    with pytest.raises(ValueError):
        trace(tiny_gpt())
    with pytest.raises(ValueError):
        trace(tiny_transformer(), src=torch.ones(1, 3, dtype=torch.long))
