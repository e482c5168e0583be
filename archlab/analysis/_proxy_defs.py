"""The zero-cost proxies themselves: one function per proxy, each run on a throw-away copy.

Every function here takes ``(net, inputs, targets, loss_fn)`` where ``net`` is a private copy
prepared by :func:`archlab.analysis.zero_cost` (train mode, dropout off, every parameter
trainable, no gradients) that it may change at will, and returns the raw score as a float.
Definitions follow SamsungLabs/zero-cost-nas (``foresight/pruners/measures``) and, for naswot,
Mellor et al. 2021; the facts are summarised in :mod:`archlab.analysis._proxies`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

LossFn = Callable[[torch.Tensor, Any], torch.Tensor]

# the layers whose weights every score is summed over (subclasses included, as in the reference)
WEIGHTED = (nn.Conv2d, nn.Linear)
# the reference bypasses these in synflow ("bn=False": their forward becomes the identity)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
# jacov: the constant of the reference's eval_score
JACOV_EPS = 1e-5


def weighted_layers(net: nn.Module) -> list[nn.Module]:
    """The Conv2d and Linear modules of ``net``, in ``net.modules()`` order."""
    return [m for m in net.modules() if isinstance(m, WEIGHTED)]


def _weights(net: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in weighted_layers(net)]


def _grads(output: torch.Tensor, wrt: Sequence[torch.Tensor],
           create_graph: bool = False) -> list[torch.Tensor]:
    """d output / d each of ``wrt``; zeros for tensors the output does not depend on."""
    if not output.requires_grad:
        return [torch.zeros_like(w) for w in wrt]
    grads = torch.autograd.grad(output, list(wrt), allow_unused=True, create_graph=create_graph)
    return [torch.zeros_like(w) if g is None else g for w, g in zip(wrt, grads)]


def _total(parts: Sequence[torch.Tensor]) -> float:
    """Sum of per-layer scores, accumulated in float64."""
    return float(sum((p.detach().double().sum() for p in parts), torch.zeros((), dtype=torch.float64)))


def _passthrough(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return x


def synflow(net: nn.Module, inputs: torch.Tensor, targets: Any, loss_fn: LossFn) -> float:
    """Σ |θ ⊙ ∂R/∂θ| with BN bypassed, float64, |θ| everywhere, one all-ones sample, R = Σ out."""
    for m in net.modules():
        if isinstance(m, _BATCH_NORMS):
            m.forward = _passthrough  # instance attribute: nn.Module.__call__ picks it up
    net.double()
    with torch.no_grad():
        for t in (*net.parameters(), *net.buffers()):
            if t.is_floating_point():
                t.abs_()
    ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
    weights = _weights(net)
    grads = _grads(net(ones).sum(), weights)
    return _total([(w.detach() * g).abs() for w, g in zip(weights, grads)])


def _loss_grads(net: nn.Module, inputs: torch.Tensor, targets: Any, loss_fn: LossFn,
                create_graph: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    weights = _weights(net)
    return weights, _grads(loss_fn(net(inputs), targets), weights, create_graph)


def snip(net: nn.Module, inputs: torch.Tensor, targets: Any, loss_fn: LossFn) -> float:
    """Σ |θ ⊙ ∂L/∂θ| (the reference's |∂L/∂mask| at mask = 1)."""
    weights, grads = _loss_grads(net, inputs, targets, loss_fn)
    return _total([(w.detach() * g).abs() for w, g in zip(weights, grads)])


def grad_norm(net: nn.Module, inputs: torch.Tensor, targets: Any, loss_fn: LossFn) -> float:
    """Σ over layers of ‖∂L/∂W‖₂ (Frobenius norm of each layer's weight gradient)."""
    _, grads = _loss_grads(net, inputs, targets, loss_fn)
    return _total([g.norm() for g in grads])


def grasp(net: nn.Module, inputs: torch.Tensor, targets: Any, loss_fn: LossFn) -> float:
    """Σ -θ ⊙ Hg, g = ∂L/∂θ (first pass, held constant), Hg = ∂(gᵀ ∂L/∂θ)/∂θ (second pass)."""
    _, first = _loss_grads(net, inputs, targets, loss_fn)
    weights, second = _loss_grads(net, inputs, targets, loss_fn, create_graph=True)
    z = sum(((g.detach() * f).sum() for g, f in zip(first, second)), torch.zeros((), device=inputs.device))
    hg = _grads(z, weights)
    return _total([-w.detach() * h for w, h in zip(weights, hg)])


def fisher(net: nn.Module, inputs: torch.Tensor, targets: Any, loss_fn: LossFn) -> float:
    """The reference's activation Fisher, on the output z of every Conv2d / Linear call.

    Per call: g[n, k] = Σ_{dims ≥ 2} z ⊙ ∂L/∂z (z itself when 2-D); Δ_k = ½ mean_n g[n, k]²,
    summed over the calls of a layer; the layer scores Σ_k |Δ_k| · numel(W[0]) (the reference
    broadcasts Δ_k over the weights of channel k). For a Linear on a (B, T, C) input, k runs over
    the T tokens, as in the reference.
    """
    deltas: dict[int, torch.Tensor] = {}
    sizes: dict[int, int] = {}

    def on_forward(module: nn.Module, args: Any, out: Any) -> None:
        if not (isinstance(out, torch.Tensor) and out.requires_grad):
            return
        act, key = out.detach().clone(), id(module)
        sizes[key] = module.weight[0].numel()

        def on_grad(grad: torch.Tensor) -> None:
            g = act * grad.detach()
            if g.dim() > 2:
                g = g.sum(dim=tuple(range(2, g.dim())))
            delta = 0.5 * g.double().pow(2).mean(0)
            deltas[key] = deltas[key] + delta if key in deltas else delta

        out.register_hook(on_grad)

    handles = [m.register_forward_hook(on_forward) for m in weighted_layers(net)]
    try:
        loss = loss_fn(net(inputs), targets)
        if loss.requires_grad:
            loss.backward()
    finally:
        for h in handles:
            h.remove()
    return _total([d.abs().sum() * sizes[key] for key, d in deltas.items()])


def jacov_score(jacobian: np.ndarray) -> float:
    """-Σ_i [log(λ_i + 1e-5) + 1 / (λ_i + 1e-5)] over the eigenvalues λ of the per-sample
    correlation matrix of ``jacobian`` ([N, D]); NaN when it is undefined (N < 2, a constant
    row). Higher = better: the score is largest when the correlation matrix is the identity."""
    jac = np.asarray(jacobian, dtype=np.float64)
    if jac.ndim != 2 or jac.shape[0] < 2:
        return float("nan")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        corr = np.corrcoef(jac)
        if not np.isfinite(corr).all():
            return float("nan")
        try:
            lam = np.linalg.eigvalsh(corr)
        except np.linalg.LinAlgError:
            return float("nan")
        return float(-np.sum(np.log(lam + JACOV_EPS) + 1.0 / (lam + JACOV_EPS)))


def jacov(net: nn.Module, inputs: torch.Tensor, targets: Any, loss_fn: LossFn) -> float:
    """:func:`jacov_score` of the input gradients of Σ outputs, one row per sample."""
    x = inputs.detach().clone().requires_grad_(True)
    out = net(x).sum()
    if not out.requires_grad:
        return float("nan")
    (jac,) = torch.autograd.grad(out, x)
    return jacov_score(jac.detach().reshape(x.shape[0], -1).double().cpu().numpy())


def relu_code_kernel(codes: torch.Tensor) -> torch.Tensor:
    """K = c cᵀ + (1 - c)(1 - c)ᵀ for binary codes ``c`` [N, F]: the number of units on which
    two samples agree (F minus their Hamming distance)."""
    c = codes.reshape(codes.shape[0], -1).to(torch.float64)
    return c @ c.T + (1.0 - c) @ (1.0 - c).T


def naswot(net: nn.Module, inputs: torch.Tensor, targets: Any, loss_fn: LossFn) -> float:
    """log|det K|, K = Σ over ReLU-module calls of :func:`relu_code_kernel` of (input > 0).

    Hooks every module whose class name contains "ReLU" (as Mellor et al. and NASLib do);
    functional ``F.relu`` calls are not seen. No ReLU module: K = 0 and the score is -inf.
    """
    n = inputs.shape[0]
    kernel = [torch.zeros((n, n), dtype=torch.float64, device=inputs.device)]

    def on_forward(module: nn.Module, args: Any, out: Any) -> None:
        # batch-major reshape: also right for a ReLU on a [N * heads, ...] tensor
        kernel[0] = kernel[0] + relu_code_kernel(args[0].detach().reshape(n, -1) > 0)

    handles = [m.register_forward_hook(on_forward) for m in net.modules()
               if "ReLU" in type(m).__name__]
    try:
        with torch.no_grad():
            net(inputs)
    finally:
        for h in handles:
            h.remove()
    _, logdet = torch.linalg.slogdet(kernel[0].cpu())
    return float(logdet)


MEASURES: dict[str, Callable[[nn.Module, torch.Tensor, Any, LossFn], float]] = {
    "synflow": synflow,
    "snip": snip,
    "grasp": grasp,
    "fisher": fisher,
    "grad_norm": grad_norm,
    "jacov": jacov,
    "naswot": naswot,
}
