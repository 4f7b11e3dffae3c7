"""The logit lens reads the residual stream through the final norm and LM head; its last layer is the logits."""

from __future__ import annotations

import pytest
import torch

from model import logit_lens, trace
from tests.conftest import tiny_gpt, tiny_transformer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_gpt_lens_shape_and_last_entry(n_kv_heads, norm_position):
    model = tiny_gpt(n_kv_heads, norm_position=norm_position)
    record = trace(model, torch.randint(0, 13, (2, 7)))
    lens = logit_lens(model, record)
    assert lens.shape == (3, 2, 7, 13)
    assert torch.allclose(lens[-1], record.logits, atol=1e-5)
    first = model.lm_head(model.decoder.final_norm(record.decoder.embedding.summed)
                          if model.decoder.final_norm is not None else record.decoder.embedding.summed)
    assert torch.allclose(lens[0], first, atol=1e-5)


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_encoder_decoder_lens_reads_the_decoder(n_kv_heads):
    model = tiny_transformer(n_kv_heads)
    record = trace(model, src=torch.randint(3, 15, (1, 6)), tgt=torch.randint(3, 11, (1, 4)))
    lens = logit_lens(model, record)
    assert lens.shape == (3, 1, 4, 11)
    assert torch.allclose(lens[-1], record.logits, atol=1e-5)


def test_lens_of_a_head_masked_trace_matches_its_logits():
    model = tiny_gpt(2)
    mask = torch.ones(2, 4)
    mask[1] = 0
    record = trace(model, torch.randint(0, 13, (1, 5)), head_mask=mask)
    assert torch.allclose(logit_lens(model, record)[-1], record.logits, atol=1e-5)


def test_lens_refuses_a_trace_of_another_kind():
    gpt = tiny_gpt()
    seq2seq = trace(tiny_transformer(), src=torch.ones(1, 3, dtype=torch.long), tgt=torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(TypeError):
        logit_lens(gpt, seq2seq)
