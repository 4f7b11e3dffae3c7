"""LayerNorm and RMSNorm: the formula written out, and the fused op that runs it.

Both normalise over the last dimension (d_model) of a (..., D) tensor.

Each class has two ways to compute the same thing:

    formula(x)   the definition written out in tensor operations: what a learner reads.
    forward(x)   PyTorch's fused kernel (F.layer_norm / F.rms_norm) for the same formula.

The written-out LayerNorm issues about ten kernels (mean, var, subtract, rsqrt, scale,
shift, and their backward) where the fused op issues one each way; in a training step that
made it a sixth of the time (benchmarks/RESULTS.md). The two are held equal, outputs and
gradients, by tests/test_components.py, and `written_out = True` on a module (or on the
class) makes forward run the formula, e.g. to step through it in a debugger.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm(nn.Module):
    """y = (x - mean) / sqrt(var + eps) * gain + bias, statistics over the last dimension."""

    written_out = False  # True: forward runs `formula` instead of the fused kernel

    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def formula(self, x: Tensor) -> Tensor:  # (..., D) -> (..., D)
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)  # the biased variance, as nn.LayerNorm
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias

    def forward(self, x: Tensor) -> Tensor:  # (..., D) -> (..., D)
        if self.written_out:
            return self.formula(x)
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * gain: LayerNorm without centring or bias."""

    written_out = False  # True: forward runs `formula` instead of the fused kernel

    def __init__(self, d_model: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def formula(self, x: Tensor) -> Tensor:  # (..., D) -> (..., D)
        mean_square = x.pow(2).mean(dim=-1, keepdim=True)
        return x * torch.rsqrt(mean_square + self.eps) * self.weight

    def forward(self, x: Tensor) -> Tensor:  # (..., D) -> (..., D)
        if self.written_out:
            return self.formula(x)
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)


def make_norm(kind: str, d_model: int) -> nn.Module:
    """The norm a config names: "layernorm" or "rmsnorm"."""
    return LayerNorm(d_model) if kind == "layernorm" else RMSNorm(d_model)
