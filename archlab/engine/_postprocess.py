"""Post-processing of predicted parameters before fine-tuning (Knyazev, "Pretraining a Neural
Network before Knowing Its Architecture", ICML 2022 workshop).

``noise``: ``w <- w + eps * std(w) * N(0, 1)``, each tensor scaled by its own std.
``orth``:  ``w <- orthogonalise(w) * std(w) / std(orthogonalise(w))``: the QR-orthogonalised
predicted tensor (rows or columns orthonormal, signs fixed by ``diag(R)``), rescaled to the
predicted tensor's own std, so the scale the GHN chose is kept.

Both act on the weights of modules with a >= 2-D ``weight`` (conv, linear), numbered 0, 1, ...
in module order, from ``from_layer`` on, and never on the classifier (the last such module).
"""

from __future__ import annotations

import torch
from torch import nn

POSTPROCESS = ("none", "noise", "orth")


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules with a >= 2-D ``weight`` parameter, in module order (the last is the classifier)."""
    return [
        (n, m) for n, m in model.named_modules()
        if isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() >= 2
    ]


def orthogonalize(w: torch.Tensor) -> torch.Tensor:
    """QR-orthogonalised copy of ``w`` viewed as ``[out, in * k * k]`` (same shape as ``w``)."""
    mat = w.detach().reshape(w.shape[0], -1).double()
    transposed = mat.shape[0] < mat.shape[1]
    if transposed:
        mat = mat.t()
    q, r = torch.linalg.qr(mat)
    q = q * torch.sign(torch.diagonal(r)).masked_fill(torch.diagonal(r) == 0, 1.0)
    if transposed:
        q = q.t()
    return q.reshape(w.shape).to(w.dtype)


@torch.no_grad()
def postprocess(
    model: nn.Module,
    method: str = "none",
    from_layer: int = 0,
    eps: float = 0.1,
    seed: int | None = None,
) -> list[str]:
    """Apply ``method`` (none|noise|orth) in place; returns the names of the changed weights."""
    if method not in POSTPROCESS:
        raise ValueError(f"unknown post-processing {method!r}; choose from {', '.join(POSTPROCESS)}")
    if from_layer < 0:
        raise ValueError(f"from_layer must be >= 0; got {from_layer}")
    if method == "none":
        return []
    gen = None
    if seed is not None:
        gen = torch.Generator(device="cpu").manual_seed(seed)
    layers = weight_layers(model)[:-1]  # never the classifier
    changed = []
    for i, (name, module) in enumerate(layers):
        if i < from_layer:
            continue
        w = module.weight
        std = w.float().std() if w.numel() > 1 else w.float().abs().mean()
        if method == "noise":
            noise = torch.randn(w.shape, generator=gen, dtype=torch.float32).to(w.device)
            w.add_((eps * std * noise).to(w.dtype))
        else:
            q = orthogonalize(w)
            qs = q.float().std()
            if qs > 0:
                w.copy_((q.float() * (std / qs)).to(w.dtype))
        changed.append(f"{name}.weight" if name else "weight")
    return changed
