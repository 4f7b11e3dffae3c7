"""Where tensors go: CUDA when it is there, else the CPU (everything runs on the CPU)."""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
