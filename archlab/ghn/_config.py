"""GHN configuration: one dataclass, named presets, and the single build path."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

KINDS = ("ghn2", "ghn3", "mlp")

# GHN-3 sizes from the GHN-3 paper / ghn3 code: (hid, layers, heads); heads = 16 if hid > 64 else 8.
_GHN3_SIZES: dict[str, tuple[int, int, int]] = {
    "t": (64, 3, 8),
    "s": (128, 5, 16),
    "l": (256, 12, 16),
    "xl": (384, 24, 16),
}

PRESETS: tuple[str, ...] = ("ghn2", "mlp", *(f"ghn3-{k}" for k in _GHN3_SIZES))


def default_spatial(image_size: int) -> int:
    """Max predicted kernel size: 11 for CIFAR-sized inputs (<= 32 px), 16 for larger ones."""
    return 11 if image_size <= 32 else 16


@dataclass(frozen=True)
class GHNConfig:
    """Everything needed to build a GHN; saved inside checkpoints (never inferred from weights).

    Attributes:
        kind: ``"ghn2"`` (gated GNN, GRU updates, virtual edges), ``"ghn3"`` (Graphormer layers)
            or ``"mlp"`` (per-node MLP, no message passing).
        hid: node-state width.
        layers: ghn2: forward+backward traversals (1 in GHN-2); ghn3: transformer layers;
            mlp: unused.
        heads: attention heads (ghn3 only).
        max_shape: ``(out, in, kh, kw)`` of the largest tensor the decoder emits; bigger targets
            are tiled. Default ``(2*hid, 2*hid, s, s)`` for ghn2/mlp, ``(hid, hid, s, s)`` for ghn3,
            ``s`` = :func:`default_spatial`.
        num_classes: classes of the task the GHN predicts classifiers for.
        image_size: input resolution of that task (32 CIFAR-10, 224 ImageNet).
        ve_cutoff: virtual-edge / shortest-path cutoff in hops (ghn2 and ghn3).
        layernorm: layer norm on the final node states.
        weight_norm: normalise predicted tensors (fan-in scaling, squashed norm weights/biases).
        mlp_ratio: transformer feed-forward width / hid (ghn3).
        max_degree, max_input_dist: clip values of the ghn3 degree / input-distance embeddings.
        reference: ``""`` for archlab's GHNs; ``"ppuda"`` / ``"ghn3"`` for a published GHN-2/MLP /
            GHN-3 loaded from its file: graphs are built as that code builds them
            (``build_graph(published=True)``), the input node has the 'no shape' embedding, and
            (ghn3) a ViT's class-token position keeps the model's value.
    """

    kind: str = "ghn2"
    hid: int = 32
    layers: int = 1
    heads: int = 8
    max_shape: tuple[int, int, int, int] | None = None
    num_classes: int = 10
    image_size: int = 32
    ve_cutoff: int = 50
    layernorm: bool = True
    weight_norm: bool = True
    mlp_ratio: int = 4
    max_degree: int = 100
    max_input_dist: int = 1000
    reference: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown GHN kind {self.kind!r}; choose from {KINDS}")
        for name in ("hid", "layers", "heads", "num_classes", "image_size", "ve_cutoff"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"GHNConfig.{name} must be a positive int, got {v!r}")
        if self.reference not in ("", "ppuda", "ghn3"):
            raise ValueError(f"GHNConfig.reference must be '', 'ppuda' or 'ghn3', got {self.reference!r}")
        if self.kind == "ghn3" and self.hid % self.heads:
            raise ValueError(f"GHNConfig.hid ({self.hid}) must be divisible by heads ({self.heads})")
        if self.hid % 4:
            raise ValueError(f"GHNConfig.hid must be a multiple of 4 (shape encoder), got {self.hid}")
        if self.max_shape is None:
            s = default_spatial(self.image_size)
            c = self.hid if self.kind == "ghn3" else 2 * self.hid
            object.__setattr__(self, "max_shape", (c, c, s, s))
        ms = tuple(int(v) for v in self.max_shape)
        if len(ms) != 4 or min(ms) < 1 or ms[2] != ms[3]:
            raise ValueError(f"GHNConfig.max_shape must be (out, in, k, k) with positive ints, got {self.max_shape!r}")
        object.__setattr__(self, "max_shape", ms)

    @property
    def virtual_edges(self) -> bool:
        return self.ve_cutoff > 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["max_shape"] = list(self.max_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GHNConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise a ValueError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown GHNConfig fields {unknown}; known fields {sorted(known)}")
        d = dict(d)
        if d.get("max_shape") is not None:
            d["max_shape"] = tuple(d["max_shape"])
        return cls(**d)

    def replace(self, **changes: Any) -> GHNConfig:
        return replace(self, **changes)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GHNConfig:
        """A named configuration: ``ghn2``, ``mlp``, ``ghn3-t``, ``ghn3-s``, ``ghn3-l``, ``ghn3-xl``.

        ``overrides`` (e.g. ``num_classes=10, image_size=32``) replace preset fields; the default
        ``max_shape`` follows the final ``hid``/``image_size``.
        """
        key = name.lower()
        if key == "ghn2":
            base: dict[str, Any] = dict(kind="ghn2", hid=32, layers=1)
        elif key == "mlp":
            base = dict(kind="mlp", hid=32, layers=1)
        elif key.startswith("ghn3-") and key[5:] in _GHN3_SIZES:
            hid, layers, heads = _GHN3_SIZES[key[5:]]
            base = dict(kind="ghn3", hid=hid, layers=layers, heads=heads)
        else:
            raise ValueError(f"unknown GHN preset {name!r}; choose from {PRESETS}")
        base.update(overrides)
        return cls(**base)
