"""Shared helpers for the archlab.space tests: FLOPs counted by forward hooks."""

from __future__ import annotations

import torch
import torch.nn as nn


def hook_flops(model: nn.Module, size: int) -> int:
    """MACs of one image's forward pass: conv + linear + attention matmuls (via hooks)."""
    from archlab.space._ops import SelfAttention

    total = 0

    def conv_hook(m, inp, out):
        nonlocal total
        kh, kw = m.kernel_size
        total += out[0].numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m, inp, out):
        nonlocal total
        total += out[0].numel() * m.in_features

    def attn_hook(m, inp, out):
        nonlocal total
        n = inp[0].shape[2] * inp[0].shape[3]
        total += 2 * n * n * m.heads * m.head_dim

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, SelfAttention):
            handles.append(m.register_forward_hook(attn_hook))
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    for h in handles:
        h.remove()
    assert torch.isfinite(out).all()
    return total
