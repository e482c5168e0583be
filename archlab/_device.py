"""Choosing the torch device: the one resolver behind every ``--device`` option."""

from __future__ import annotations

from archlab.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto"):
    """``auto`` picks CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    import torch

    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} requested but CUDA is not available")
    if device != "cpu" and not device.startswith("cuda"):
        raise UsageError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    return torch.device(device)
