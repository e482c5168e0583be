"""Zero-cost proxies: hand-checked tiny cases, the model left untouched, NaN handling, real nets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from archlab.analysis import PROXIES, zero_cost
from archlab.analysis._proxy_defs import JACOV_EPS, jacov_score, relu_code_kernel
from archlab.errors import UsageError


def half_sse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out - target) ** 2).sum()


def _linear(w: np.ndarray, b: np.ndarray | None = None) -> nn.Linear:
    layer = nn.Linear(w.shape[1], w.shape[0], bias=b is not None).double()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w))
        if b is not None:
            layer.bias.copy_(torch.from_numpy(b))
    return layer


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def linear_case(rng):
    """A single Linear(3 -> 2) in float64, its batch (5 samples) and regression targets."""
    w, b = rng.normal(size=(2, 3)), rng.normal(size=2)
    x, t = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    return w, b, x, t, _linear(w, b), torch.from_numpy(x), torch.from_numpy(t)


def test_synflow_two_layer_linear_closed_form(rng):
    w1, b1, w2, b2 = rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=(2, 4)), rng.normal(size=2)
    # BatchNorm1d is bypassed: with one sample in train mode it would raise if it ran
    model = nn.Sequential(_linear(w1, b1), nn.BatchNorm1d(4), _linear(w2, b2)).float()
    x = torch.randn(7, 3)
    # R = Σ |W2| (|W1| 1 + |b1|) + |b2|: ∂R/∂W2[j, i] = h_i, ∂R/∂W1[i, l] = Σ_j |W2[j, i]|
    h = np.abs(w1).sum(1) + np.abs(b1)
    expected = (np.abs(w2) * h).sum() + (np.abs(w1) * np.abs(w2).sum(0)[:, None]).sum()
    got = zero_cost(model, x, torch.zeros(7, dtype=torch.long), proxies="synflow")
    assert got["synflow"] == pytest.approx(expected, rel=1e-6)  # float32 weights, float64 run


def test_snip_grad_norm_grasp_of_one_linear_layer_by_hand(linear_case):
    w, b, x, t, model, xt, tt = linear_case
    g = (x @ w.T + b - t).T @ x  # ∂L/∂W of L = ½ Σ ‖W x + b - t‖²
    hg = g @ (x.T @ x)  # L is quadratic in W: H v = v XᵀX
    got = zero_cost(model, xt, tt, proxies=("snip", "grad_norm", "grasp"), loss_fn=half_sse)
    assert list(got) == ["snip", "grad_norm", "grasp"]
    assert got["snip"] == pytest.approx(np.abs(w * g).sum(), rel=1e-12)
    assert got["grad_norm"] == pytest.approx(np.sqrt((g**2).sum()), rel=1e-12)
    assert got["grasp"] == pytest.approx(-(w * hg).sum(), rel=1e-12)


def test_grad_norm_with_cross_entropy_by_hand(linear_case):
    w, b, x, _, model, xt, _ = linear_case
    y = np.array([0, 1, 1, 0, 1])
    z = x @ w.T + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g = (p - np.eye(2)[y]).T @ x / len(x)  # mean cross-entropy
    got = zero_cost(model, xt, torch.from_numpy(y), proxies=["grad_norm", "snip"])
    assert got["grad_norm"] == pytest.approx(np.sqrt((g**2).sum()), rel=1e-12)
    assert got["snip"] == pytest.approx(np.abs(w * g).sum(), rel=1e-12)


def test_fisher_of_one_linear_layer_by_hand(linear_case):
    w, b, x, t, model, xt, tt = linear_case
    z = x @ w.T + b
    delta = 0.5 * ((z * (z - t)) ** 2).mean(0)  # g[n, k] = z ⊙ ∂L/∂z
    got = zero_cost(model, xt, tt, proxies="fisher", loss_fn=half_sse)
    assert got["fisher"] == pytest.approx(delta.sum() * 3, rel=1e-12)  # × in_features


def test_fisher_of_a_pointwise_conv_by_hand(rng):
    w, b = rng.normal(size=(3, 2)), rng.normal(size=3)
    x, t = rng.normal(size=(4, 2, 3, 3)), rng.normal(size=(4, 3, 3, 3))
    conv = nn.Conv2d(2, 3, 1).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w)[:, :, None, None])
        conv.bias.copy_(torch.from_numpy(b))
    z = np.einsum("kc,nchw->nkhw", w, x) + b[None, :, None, None]
    g = (z * (z - t)).sum(axis=(2, 3))  # summed over the spatial dims
    expected = 0.5 * (g**2).mean(0).sum() * 2  # × numel(W[0]) = 2 · 1 · 1
    got = zero_cost(conv, torch.from_numpy(x), torch.from_numpy(t), proxies="fisher", loss_fn=half_sse)
    assert got["fisher"] == pytest.approx(expected, rel=1e-12)


class _WithSpareLayer(nn.Module):
    def __init__(self, used: nn.Module):
        super().__init__()
        self.used, self.spare = used, nn.Linear(3, 2).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x)


def test_layers_off_the_forward_path_add_nothing(linear_case):
    *_, model, xt, tt = linear_case
    alone = zero_cost(model, xt, tt, loss_fn=half_sse)
    assert zero_cost(_WithSpareLayer(model), xt, tt, loss_fn=half_sse) == alone


def test_jacov_score_hand_cases():
    uncorrelated = np.array([[1.0, -1, 1, -1], [1, 1, -1, -1]])  # corrcoef = I, λ = 1, 1
    one = 1 + JACOV_EPS
    assert jacov_score(uncorrelated) == pytest.approx(-2 * (math.log(one) + 1 / one), rel=1e-12)
    # identical rows: corrcoef = all ones, λ = 0, 2
    same = np.array([[1.0, 2, 4], [1, 2, 4]])
    expected = -(math.log(JACOV_EPS) + 1 / JACOV_EPS + math.log(2 + JACOV_EPS) + 1 / (2 + JACOV_EPS))
    assert jacov_score(same) == pytest.approx(expected, rel=1e-9)
    assert math.isnan(jacov_score(np.array([[1.0, 1, 1], [1, 2, 3]])))  # a constant row
    assert math.isnan(jacov_score(np.array([[1.0, 2, 3]])))  # one sample


def test_jacov_of_a_linear_model_closed_form(linear_case):
    # every sample's Jacobian is Σ_j W[j, :]: the correlation matrix is all ones (λ = 0 ×4, 5)
    *_, model, xt, tt = linear_case
    n, k = 5, JACOV_EPS
    expected = -((n - 1) * (math.log(k) + 1 / k) + math.log(n + k) + 1 / (n + k))
    got = zero_cost(model, xt, tt, proxies="jacov")["jacov"]
    assert got == pytest.approx(expected, rel=1e-8)


def test_naswot_of_known_codes():
    x = torch.tensor([[1.0, -1, 2], [-1, -1, 3], [2, 1, -1]])  # codes 101, 001, 110
    k = relu_code_kernel(x > 0)
    assert k.tolist() == [[3, 2, 1], [2, 3, 0], [1, 0, 3]]  # agreements; det = 12
    y = torch.zeros(3, dtype=torch.long)
    assert zero_cost(nn.Sequential(nn.ReLU()), x, y, proxies="naswot")["naswot"] == pytest.approx(math.log(12))
    # two ReLU calls with the same codes: K doubles, log det gains 3 log 2
    twice = zero_cost(nn.Sequential(nn.ReLU(), nn.ReLU()), x, y, proxies="naswot")["naswot"]
    assert twice == pytest.approx(math.log(12) + 3 * math.log(2))
    # two samples with the same code: K singular, the worst score
    assert zero_cost(nn.ReLU(), x[[0, 0, 1]], y, proxies="naswot")["naswot"] == -math.inf


def _small_convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5),
        nn.Linear(8, 10),
    )


def _snapshot(model: nn.Module) -> dict:
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "devices": [p.device for p in model.parameters()],
        "dtypes": [p.dtype for p in model.parameters()],
    }


def _assert_same(before: dict, after: dict) -> None:
    assert before["state"].keys() == after["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(value, after["state"][key]), key  # bit-identical, buffers included
    for name in ("training", "requires_grad", "devices", "dtypes"):
        assert before[name] == after[name], name
    for g0, g1 in zip(before["grads"], after["grads"]):
        assert (g0 is None and g1 is None) or torch.equal(g0, g1)


@pytest.mark.parametrize("setup", ["fresh", "eval_frozen_with_grads"])
def test_model_left_exactly_as_found(setup):
    model = _small_convnet()
    x, y = torch.randn(6, 3, 8, 8), torch.arange(6)
    if setup == "eval_frozen_with_grads":
        model.eval()
        model[1].train()  # mixed modes must come back mixed
        model[0].weight.requires_grad_(False)
        nn.functional.cross_entropy(model(x), y).backward()
        model[0].bias.grad = None  # and one missing grad stays missing
    x.requires_grad_(True)
    before, x_before = _snapshot(model), x.detach().clone()
    scores = zero_cost(model, x, y)
    _assert_same(before, _snapshot(model))
    assert torch.equal(x.detach(), x_before) and x.requires_grad and x.grad is None
    assert list(scores) == list(PROXIES)
    assert all(math.isfinite(v) for v in scores.values()), scores


def test_mode_of_the_caller_does_not_change_scores():
    model, x, y = _small_convnet(), torch.randn(6, 3, 8, 8), torch.arange(6)
    first = zero_cost(model, x, y)
    model.eval()
    assert zero_cost(model, x, y) == first  # deterministic: train mode and no dropout on the copy


def test_nan_and_overflow_rank_worst():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    scores = zero_cost(model, torch.randn(5, 4), torch.arange(5) % 3)
    assert scores == dict.fromkeys(PROXIES, -math.inf) | {"naswot": scores["naswot"]}
    # float64 synflow of 1e200-sized weights overflows to inf: -inf as well
    big = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)).double()
    with torch.no_grad():
        for p in big.parameters():
            p.fill_(1e200)
    assert zero_cost(big, torch.randn(3, 4).double(), torch.arange(3), proxies="synflow") == {
        "synflow": -math.inf}


def test_bad_arguments():
    model, x, y = nn.Linear(3, 2), torch.randn(4, 3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(UsageError, match="unknown zero-cost proxy 'zen'"):
        zero_cost(model, x, y, proxies=("snip", "zen"))
    with pytest.raises(UsageError):
        zero_cost(model, x, y, proxies=())
    with pytest.raises(UsageError):
        zero_cost(model, x[:0], y[:0])


@pytest.fixture(scope="module")
def digits_batch() -> tuple[torch.Tensor, torch.Tensor]:
    from archlab.data import load_dataset, make_loader

    ds = load_dataset("digits", split="train", augment=False)
    return next(iter(make_loader(ds, batch_size=16, shuffle=False)))


def _real_nets():
    import torchvision

    from archlab.space import build_network, load_split

    torch.manual_seed(0)
    yield "deepnets_test0", build_network(load_split("test")[0], num_classes=10, input="cifar",
                                          image_size=16)
    torch.manual_seed(0)
    yield "resnet18", torchvision.models.resnet18(num_classes=10)


@pytest.mark.parametrize("name", ["deepnets_test0", "resnet18"])
def test_real_networks_on_digits(name, digits_batch):
    model = dict(_real_nets())[name]
    x, y = digits_batch
    assert x.shape == (16, 3, 16, 16)
    before = _snapshot(model)
    scores = zero_cost(model, x, y)
    _assert_same(before, _snapshot(model))
    assert list(scores) == list(PROXIES)
    assert all(math.isfinite(v) for v in scores.values()), scores
    for positive in ("synflow", "snip", "fisher", "grad_norm", "naswot"):
        assert scores[positive] > 0, (positive, scores)
    # jacov is at most -N (λ summing to N, each term log λ + 1/λ ≥ 1)
    assert scores["jacov"] <= -16 + 1e-6
    assert zero_cost(model, x, y, proxies=("naswot", "snip")) == {
        "naswot": scores["naswot"], "snip": scores["snip"]}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_the_model_device_and_matches_cpu(digits_batch):
    model = dict(_real_nets())["deepnets_test0"]
    x, y = digits_batch
    cpu = zero_cost(model, x, y)
    model.cuda()
    before = _snapshot(model)
    gpu = zero_cost(model, x, y)  # CPU batch, CUDA model: runs on CUDA
    _assert_same(before, _snapshot(model))
    assert all(p.is_cuda for p in model.parameters())
    for key, value in cpu.items():
        assert gpu[key] == pytest.approx(value, rel=1e-3), key
