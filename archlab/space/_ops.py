"""Torch modules of the DeepNets-1M cell operations (DARTS-style, plus msa and cse).

Every op maps ``C`` channels to ``C`` channels (``stride`` 1 or 2). Parameter counts and MACs of
these modules are mirrored in :mod:`archlab.space._stats`; keep the two in sync (tests check).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def norm_layer(C: int, norm: bool, track: bool) -> nn.Module:
    """BatchNorm2d (batch statistics unless ``track``) or identity for BN-free nets."""
    return nn.BatchNorm2d(C, track_running_stats=track) if norm else nn.Identity()


class ReLUConvBN(nn.Sequential):
    """ReLU -> conv (k x k, or 1 x k then k x 1 when ``double``) -> norm."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, norm: bool, track: bool,
                 double: bool = False):
        p = k // 2
        if double:
            convs = [nn.Conv2d(c_in, c_in, (1, k), stride=(1, stride), padding=(0, p), bias=False),
                     nn.Conv2d(c_in, c_out, (k, 1), stride=(stride, 1), padding=(p, 0), bias=False)]
        else:
            convs = [nn.Conv2d(c_in, c_out, k, stride=stride, padding=p, bias=False)]
        super().__init__(nn.ReLU(), *convs, norm_layer(c_out, norm, track))


class SepConv(nn.Sequential):
    """(ReLU -> depthwise k x k -> pointwise 1x1 -> norm) twice; the first pair carries the stride."""

    def __init__(self, C: int, k: int, stride: int, norm: bool, track: bool):
        layers = []
        for s in (stride, 1):
            layers += [nn.ReLU(), nn.Conv2d(C, C, k, stride=s, padding=k // 2, groups=C, bias=False),
                       nn.Conv2d(C, C, 1, bias=False), norm_layer(C, norm, track)]
        super().__init__(*layers)


class DilConv(nn.Sequential):
    """ReLU -> depthwise k x k conv with dilation 2 -> pointwise 1x1 -> norm."""

    def __init__(self, C: int, k: int, stride: int, norm: bool, track: bool):
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(C, C, k, stride=stride, padding=k - 1, dilation=2, groups=C, bias=False),
            nn.Conv2d(C, C, 1, bias=False),
            norm_layer(C, norm, track),
        )


class FactorizedReduce(nn.Module):
    """Halve the spatial size with two offset strided 1x1 convs, concatenated, then norm."""

    def __init__(self, c_in: int, c_out: int, norm: bool, track: bool):
        super().__init__()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = norm_layer(c_out, norm, track)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class Stride(nn.Module):
    """Keep every ``stride``-th pixel (parameter-free down-sampling)."""

    def __init__(self, stride: int = 2):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride]


class ChannelSE(nn.Module):
    """Channel squeeze-excitation: spatial mean -> fc (C/2) -> ReLU -> fc (C) -> gate -> product.

    As in DeepNets-1M the gate is a hard-swish and the mean does not keep dims, so GHN-2 graphs
    get one ``cse`` node (the product) and no ``glob_avg`` node for it.
    """

    def __init__(self, C: int, stride: int = 1):
        super().__init__()
        self.stride = stride
        self.fc1 = nn.Linear(C, C // 2)
        self.fc2 = nn.Linear(C // 2, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        s = x.reshape(b, c, -1).mean(dim=2)
        gate = F.hardswish(self.fc2(F.relu(self.fc1(s))))
        out = x * gate.view(b, c, 1, 1)
        return out[:, :, :: self.stride, :: self.stride] if self.stride > 1 else out


class SelfAttention(nn.Module):
    """Pre-norm transformer block on the pixels of a feature map (8 heads, MLP width C).

    ``x + MSA(LN(x))`` then ``y + MLP(LN(y))``; with ``stride`` 2 the output is subsampled.
    """

    def __init__(self, C: int, stride: int = 1, heads: int = 8):
        super().__init__()
        self.stride = stride
        self.heads = heads
        self.head_dim = C // heads
        inner = self.head_dim * heads
        self.ln1 = nn.LayerNorm(C)
        self.to_qkv = nn.Linear(C, 3 * inner, bias=False)
        self.to_out = nn.Linear(inner, C)
        self.ln2 = nn.LayerNorm(C)
        self.ff = nn.Sequential(nn.Linear(C, C), nn.GELU(), nn.Linear(C, C))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)  # B, N, C
        n = t.shape[1]
        qkv = self.to_qkv(self.ln1(t)).reshape(b, n, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each B, heads, N, head_dim
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.head_dim**-0.5, dim=-1)
        o = (attn @ v).transpose(1, 2).reshape(b, n, self.heads * self.head_dim)
        o = self.to_out(o) + t
        o = self.ff(self.ln2(o)) + o
        o = o.transpose(1, 2).reshape(b, c, h, w)
        return o[:, :, :: self.stride, :: self.stride] if self.stride > 1 else o


class PosEnc(nn.Module):
    """Learned positional encoding added to a ``C x h x h`` feature map."""

    def __init__(self, C: int, h: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, C, h, h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight


def make_op(name: str, C: int, stride: int, norm: bool, track: bool) -> nn.Module:
    """Instantiate cell op ``name`` (one of :data:`archlab.space.CELL_OPS` except ``none``)."""
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(C, C, norm, track)
    if name.startswith("sep_conv"):
        return SepConv(C, int(name[-1]), stride, norm, track)
    if name.startswith("dil_conv"):
        return DilConv(C, int(name[-1]), stride, norm, track)
    if name == "conv_7x1_1x7":
        return ReLUConvBN(C, C, 7, stride, norm, track, double=True)
    if name.startswith("conv_"):
        return ReLUConvBN(C, C, int(name[-1]), stride, norm, track)
    if name == "msa":
        return SelfAttention(C, stride)
    if name == "cse":
        return ChannelSE(C, stride)
    raise ValueError(f"cannot build op {name!r}")
