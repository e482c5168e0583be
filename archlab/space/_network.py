"""Build a plain ``nn.Module`` from a :class:`Genotype` (and the PREDEFINED split's models)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.utils.checkpoint

from ._genotype import VIT, Genotype
from ._ops import FactorizedReduce, PosEnc, ReLUConvBN, Stride, make_op, norm_layer
from ._plan import CellPlan, NetPlan, plan_input_size, plan_network


class Cell(nn.Module):
    """One DARTS-style cell with only its live ops (see :mod:`archlab.space._plan`)."""

    def __init__(self, plan: CellPlan, norm: bool, track: bool):
        super().__init__()
        C = plan.C
        self.pre0 = preproc(plan.pre0, plan.c_in0, C, norm, track)
        self.pre1 = preproc(plan.pre1, plan.c_in1, C, norm, track)
        self.ops = nn.ModuleDict()
        nodes: dict[int, list[tuple[str, int]]] = {}
        for op in plan.ops:
            self.ops[str(op.index)] = make_op(op.name, C, op.stride, norm, track)
            nodes.setdefault(op.dst, []).append((str(op.index), op.src))
        self._nodes = sorted(nodes.items())
        self._concat = plan.concat

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states: dict[int, torch.Tensor] = {}
        if self.pre0 is not None:
            states[0] = self.pre0(s0)
        if self.pre1 is not None:
            states[1] = self.pre1(s1)
        for dst, inputs in self._nodes:
            acc = None
            for key, src in inputs:
                h = self.ops[key](states[src])
                acc = h if acc is None else acc + h
            states[dst] = acc
        outs = [states[i] for i in self._concat]
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)


def stem_modules(plan: NetPlan, track: bool = False) -> dict[str, nn.Module]:
    """The stem of a :class:`Network` as ``{attribute name: module}``, in registration order."""
    g, C, norm = plan.genotype, plan.C, plan.norm
    k, s = plan.stem_ks, plan.stem_stride
    if plan.stem == "vit":
        return {"stem0": nn.Conv2d(3, C, k, stride=k, padding=int(k < 4), bias=False),
                "pos_enc": PosEnc(C, plan.stem_sizes[0])}
    if plan.stem == "simple":
        cs = plan.stem_channels
        layers = [nn.Conv2d(3, cs, k, stride=s, padding=k // 2, bias=False), norm_layer(cs, norm, track)]
        if g.stem_pool:
            layers.append(nn.MaxPool2d(3, stride=2, padding=1))
        return {"stem": nn.Sequential(*layers)}
    return {
        "stem0": nn.Sequential(
            nn.Conv2d(3, C // 2, k, stride=s, padding=k // 2, bias=False),
            norm_layer(C // 2, norm, track),
            nn.ReLU(),
            nn.Conv2d(C // 2, C, 3, stride=s, padding=1, bias=False),
            norm_layer(C, norm, track),
        ),
        "stem1": ReLUConvBN(C, C, 3, 2, norm, track),
    }


def head_modules(plan: NetPlan) -> tuple[nn.Module, nn.Sequential]:
    """``(global_pooling, classifier)`` of a :class:`Network`."""
    pooling = nn.AdaptiveAvgPool2d(1) if plan.genotype.glob_avg else nn.Identity()
    fc: list[nn.Module] = []
    for i, (fin, fout) in enumerate(plan.fc):
        if i:
            fc += [nn.ReLU(), nn.Dropout(0.5)]
        fc.append(nn.Linear(fin, fout))
    return pooling, nn.Sequential(*fc)


def preproc(kind: str | None, c_in: int, C: int, norm: bool, track: bool) -> nn.Module | None:
    if kind is None:
        return None
    if kind == "conv":
        return ReLUConvBN(c_in, C, 1, 1, norm, track)
    if kind == "reduce":
        return FactorizedReduce(c_in, C, norm, track)
    return Stride(2) if kind == "stride" else nn.Identity()


class Network(nn.Module):
    """A DeepNets-1M network; ``forward(x) -> logits``. ``genotype`` and ``plan`` are kept."""

    def __init__(self, plan: NetPlan, track_running_stats: bool = False):
        super().__init__()
        g, norm, track = plan.genotype, plan.norm, track_running_stats
        self.genotype = g
        self.plan = plan
        self.input_size = plan.input_size
        self._stem = plan.stem
        for name, module in stem_modules(plan, track).items():
            self.add_module(name, module)
        self.cells = nn.ModuleList(Cell(c, norm, track) for c in plan.cells)
        self.global_pooling, self.classifier = head_modules(plan)
        #: recompute each cell's activations in the backward pass instead of keeping them (peak
        #: memory of a training step: about one cell's activations; costs about one more forward)
        self.checkpoint_cells = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._stem == "vit":
            s0 = s1 = self.pos_enc(self.stem0(x))
        elif self._stem == "simple":
            s0 = s1 = self.stem(x)
        else:
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        for cell in self.cells:
            if self.checkpoint_cells and torch.is_grad_enabled():
                s0, s1 = s1, torch.utils.checkpoint.checkpoint(cell, s0, s1, use_reentrant=False)
            else:
                s0, s1 = s1, cell(s0, s1)
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))


def build_network(genotype: Genotype, num_classes: int = 10, input: str = "cifar", C: int = 32,
                  fc_dim: int = 256, track_running_stats: bool = False,
                  image_size: int | None = None) -> Network:
    """Build ``genotype`` as a plain ``nn.Module`` for ``input`` "cifar" (small-image stem,
    32x32) or "imagenet" (224x224) images, ``C`` channels in the first cells and ``fc_dim``
    hidden fc units. ``image_size`` overrides the input's default size (e.g. 16 for digits).

    BatchNorm layers use batch statistics in eval mode too (as in DeepNets-1M, so that predicted
    parameters need no running statistics) unless ``track_running_stats``. The module has
    ``input_size`` (the image size), ``genotype`` and ``plan`` attributes.
    """
    if not isinstance(genotype, Genotype):
        raise TypeError(f"build_network expects a Genotype, got {type(genotype).__name__}")
    plan = plan_network(genotype, C=C, num_classes=num_classes, fc_dim=fc_dim, input=input,
                        image_size=image_size)
    return Network(plan, track_running_stats=track_running_stats)


PREDEFINED = ("resnet50", "vit")


def build_predefined(name: str, num_classes: int = 10, input: str = "cifar",
                     image_size: int | None = None) -> nn.Module:
    """A model of the PREDEFINED split: ``"resnet50"`` (torchvision; CIFAR stem for small input:
    3x3 stride-1 first conv, no max pool) or ``"vit"`` (the ViT-like genotype, C=128, 12 cells).
    ``image_size``: as in :func:`build_network`."""
    size = plan_input_size(input, image_size)
    if name == "vit":
        return build_network(VIT, num_classes=num_classes, input=input, C=128, image_size=size)
    if name == "resnet50":
        import torchvision

        model = torchvision.models.resnet50(num_classes=num_classes)
        if input == "cifar":
            model.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
            model.maxpool = nn.Identity()
        model.input_size = size
        return model
    raise ValueError(f"unknown predefined model {name!r}; choose from {', '.join(PREDEFINED)}")
