"""Zero-cost proxies: score an untrained candidate from one batch, to rank before training.

``zero_cost(model, inputs, targets)`` returns ``{proxy: score}`` for the proxies of
SamsungLabs/zero-cost-nas (Abdelfattah et al. 2021, ``foresight/pruners/measures``, as NASLib
uses them) and NASWOT (Mellor et al. 2021). Scores are summed over the weights of every
``nn.Conv2d`` and ``nn.Linear`` (subclasses included), as the reference does.

========== ============================================================================
synflow    Σ |θ ⊙ ∂R/∂θ|: BatchNorm bypassed (its forward is the identity, the reference's
           ``bn=False``), float64, every parameter and buffer replaced by its absolute value,
           input = ONE all-ones sample of the batch's shape ``[1, *inputs.shape[1:]]``,
           R = Σ outputs.
snip       Σ |θ ⊙ ∂L/∂θ| (the reference's |∂L/∂mask| at mask = 1).
grasp      Σ -θ ⊙ Hg with g = ∂L/∂θ (held constant) and Hg = ∂(g · ∂L/∂θ)/∂θ; the reference's
           sign ("-theta_q Hg", chosen there because accuracy correlated negatively with +θHg).
fisher     per call of a layer with output z: g[n, k] = Σ_{spatial} z ⊙ ∂L/∂z,
           Δ_k = ½ mean_n g[n, k]²; layer score Σ_k |Δ_k| · numel(W[0]) (the reference
           broadcasts Δ_k over channel k's weights before summing). z is the layer's own
           output, before any BatchNorm or nonlinearity: the reference's dummy identity
           sits right after F.conv2d / F.linear inside the layer's forward.
grad_norm  Σ over layers of ‖∂L/∂W‖₂.
jacov      J = ∂(Σ outputs)/∂x, one row per sample; λ = eigenvalues of corrcoef(J);
           score -Σ [log(λ + 1e-5) + 1/(λ + 1e-5)] (the reference's eval_score).
naswot     log|det K|, K = Σ over ReLU calls of c cᵀ + (1-c)(1-c)ᵀ, c = (ReLU input > 0).
========== ============================================================================

Sign convention: every value is "higher = predicted better". All seven are higher-is-better as
the references define them (grasp and jacov already carry their minus sign), so none is negated
here. A NaN or ±inf score (an overflowing synflow, a degenerate jacov or naswot kernel) is
returned as ``-inf``, the worst rank.

How the network is run (the same for every proxy, each on its own deep copy of ``model``):
train mode, so BatchNorm uses batch statistics (the reference inherits the caller's mode,
which in its scripts is always a freshly built net in train mode; fisher sets train mode
itself); every parameter trainable; the run is on the model's device (the inputs' device for
a parameter-free model). ``model`` itself is never touched: its parameters, buffers, mode,
``requires_grad`` flags, device and ``.grad`` are as they were.

Deviations from the reference, all where it is random, undefined or fails:

* dropout modules are put in eval mode (the reference leaves them in train mode, making
  every score random from call to call);
* frozen parameters are made trainable on the copy (the reference scores them 0 in most
  proxies), so a proxy ranks the architecture, not the caller's freezing;
* fisher hooks the output tensor of every call of a layer and accumulates over calls (the
  reference's identity-module hook keeps one activation per layer and crashes on a layer
  called twice); a Linear on a (B, T, C) input gets its "channels" k over the T tokens, as
  in the reference;
* jacov uses the symmetric eigen-solver ``eigvalsh`` (the reference's ``eig`` can return
  complex values for a near-degenerate matrix) and returns -inf for a batch of one;
* no splitting of the batch on out-of-memory (the reference's ``split_data`` retry).

Reference check (scratch run of SamsungLabs/zero-cost-nas a43bfbc outside the project, NASWOT
after NASLib's ``measures/nwot.py``; both on the same nets and batch: ``torch.manual_seed(0)``
then ``build_network(load_split("test")[0], num_classes=10, input="cifar", image_size=16)``
resp. ``torchvision.models.resnet18(num_classes=10)``, the first 32 digits training images
without augmentation, train mode, dropout p = 0 for the reference). float32 values, with the
relative difference |archlab - ref| / |ref|:

========== ============================ ============================
proxy      DeepNets-1M test[0]          resnet18
========== ============================ ============================
synflow     7.0619564475e+24  (0)        7.4157160287e+20  (0)
snip        3.7659343141e+02  (4.5e-08)  9.3564910528e+02  (3.9e-09)
grasp      -1.1344355664e+01  (1.1e-05)  -1.6863728745e+02 (2.4e-06)
fisher      4.9645196656e+00  (2.3e-07)  4.8559947139e+01  (1.4e-07)
grad_norm   1.4368239579e+02  (3.7e-07)  1.7873361123e+02  (8.1e-08)
jacov      -3.3027983319e+01  (2.2e-16)  -3.3705207975e+01 (2.1e-16)
naswot      3.8795261541e+02  (2.9e-16)  2.6741302911e+02  (0)
========== ============================ ============================

The float32 differences are summation order (the reference sums in float32, archlab in
float64; grasp sums terms of both signs). Run in float64 (nets and batch), every proxy agrees
to 0-1.5e-16 except fisher (5e-07, 1.2e-08: the reference broadcasts Δ_k into float32 tensors).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from archlab.analysis._proxy_defs import MEASURES, LossFn
from archlab.errors import UsageError

PROXIES: tuple[str, ...] = tuple(MEASURES)

_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
             nn.FeatureAlphaDropout)


def _check_proxies(proxies: Iterable[str] | str) -> list[str]:
    names = [proxies] if isinstance(proxies, str) else list(proxies)
    unknown = [p for p in names if p not in MEASURES]
    if unknown:
        raise UsageError(f"unknown zero-cost proxy {unknown[0]!r}; choose from {', '.join(PROXIES)}")
    if not names:
        raise UsageError("no zero-cost proxy asked for")
    return list(dict.fromkeys(names))


def _device_of(model: nn.Module, inputs: torch.Tensor) -> torch.device:
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return inputs.device


def scratch_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` to score: train mode, dropout off, all trainable, no grads."""
    net = copy.deepcopy(model)
    net.train()
    for m in net.modules():
        if isinstance(m, _DROPOUTS):
            m.eval()
    for p in net.parameters():
        p.grad = None
        p.requires_grad_(True)
    return net


def _to(value: Any, device: torch.device) -> Any:
    return value.detach().to(device) if isinstance(value, torch.Tensor) else value


def finite_or_worst(value: float) -> float:
    """``value`` if finite, else ``-inf`` (NaN and ±inf rank last)."""
    return value if math.isfinite(value) else -math.inf


def zero_cost(model: nn.Module, inputs: torch.Tensor, targets: Any,
              proxies: Iterable[str] | str = PROXIES,
              loss_fn: LossFn | None = None) -> dict[str, float]:
    """Zero-cost proxy scores of ``model`` on one batch, ``{proxy: score}`` in ``proxies`` order.

    inputs: a batch ``[N, ...]`` (N ≥ 2 for jacov and naswot); targets: what ``loss_fn`` takes
    (class indices for the default ``F.cross_entropy``). Every score is "higher = predicted
    better"; NaN / ±inf become ``-inf``. ``model`` is left exactly as it was (each proxy runs
    on a deep copy, on the model's device). See the module docstring for the definitions.
    """
    names = _check_proxies(proxies)
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1 or inputs.shape[0] < 1:
        raise UsageError("zero_cost needs a non-empty batch tensor of inputs [N, ...]")
    loss = F.cross_entropy if loss_fn is None else loss_fn
    device = _device_of(model, inputs)
    x, y = _to(inputs, device), _to(targets, device)
    scores: dict[str, float] = {}
    for name in names:
        net = scratch_copy(model)
        try:
            with torch.enable_grad():
                scores[name] = finite_or_worst(MEASURES[name](net, x, y, loss))
        finally:
            del net
    return scores
