"""LayerNorm and RMSNorm written out, so the formula on screen is the code that runs.

Both normalise over the last dimension (d_model) of a (..., D) tensor.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LayerNorm(nn.Module):
    """y = (x - mean) / sqrt(var + eps) * gain + bias, statistics over the last dimension."""

    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x: Tensor) -> Tensor:  # (..., D) -> (..., D)
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)  # the biased variance, as nn.LayerNorm
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * gain: LayerNorm without centring or bias."""

    def __init__(self, d_model: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: Tensor) -> Tensor:  # (..., D) -> (..., D)
        mean_square = x.pow(2).mean(dim=-1, keepdim=True)
        return x * torch.rsqrt(mean_square + self.eps) * self.weight


def make_norm(kind: str, d_model: int) -> nn.Module:
    """The norm a config names: "layernorm" or "rmsnorm"."""
    return LayerNorm(d_model) if kind == "layernorm" else RMSNorm(d_model)
