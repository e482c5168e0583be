"""Published GHN checkpoints: facebookresearch/ppuda (GHN-2, MLP-GHN) and SamsungSAILMontreal/ghn3.

Layouts read (and written, for tests and conversions, by :func:`save_published`)::

    ppuda  ghn2_*.pt, mlp_*.pt   torch.save({"state_dict", "config", "epoch", ...})
    ghn3   ghn3*.pt (torch)      torch.save({"state_dict", "config", "args", "optimizer", ...})
    ghn3   ghn3*.pt (joblib)     joblib.dump(state_dict): no config record

The configuration comes from the file's ``config`` record; a bare GHN-3 state dict has none, so
its sizes are read off the weights and matched against the GHN-3 presets (which one is said).
Weights are renamed to archlab's modules by one table of ``(published, archlab)`` name prefixes,
used in both directions; 1x1-conv decoder weights (ppuda) become linear weights.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from archlab._io import atomic_save, atomic_write_bytes

from ._config import _GHN3_SIZES, GHNConfig

log = logging.getLogger("archlab.ghn")
LAYOUTS = ("ppuda", "ghn3", "ghn3-joblib")
CONVERT_HINT = ("convert it once with joblib (this unpickles it, so only for a file you trust): "
                "python -c \"import joblib, torch; torch.save(joblib.load('{p}'), '{p}.torch.pt')\" "
                "and load {p}.torch.pt")

_COMMON = (
    ("embed.", "encoder.embed."),
    ("shape_enc.", "encoder.shape_enc."),
    ("ln.", "ln."),
    ("decoder.fc.0.", "decoder.fc."),
    ("decoder.conv.", "decoder.conv."),
    ("decoder.class_layer_predictor.", "decoder.class_layer_predictor."),
    ("decoder_1d.fc.", "decoder_1d.decoder_1d."),
    ("bias_class.", "decoder_1d.bias_class."),
)
_GNN: dict[str, tuple[tuple[str, str], ...]] = {
    "ghn2": (("gnn.mlp.fc.", "gnn.mlp."), ("gnn.mlp_ve.fc.", "gnn.mlp_ve."), ("gnn.gru.", "gnn.gru.")),
    "mlp": (("gnn.fc.", "gnn.mlp."),),
    "ghn3": (
        ("gnn.0.attn.edge_embed.embed.", "gnn.edge_bias.edge_embed."),
        ("gnn.0.attn.proj_e.", "gnn.edge_bias.proj_e."),
        *((f"{p}{e}.", f"gnn.{e}.") for e in ("centrality_embed_in", "centrality_embed_out", "input_dist_embed")
          for p in ("gnn.0.", "")),
        ("gnn.{i}.ln1.", "gnn.layers.{i}.ln1."),
        ("gnn.{i}.ln2.", "gnn.layers.{i}.ln2."),
        ("gnn.{i}.attn.to_qkv.", "gnn.layers.{i}.attn.to_qkv."),
        ("gnn.{i}.attn.to_out.0.", "gnn.layers.{i}.attn.to_out."),
        ("gnn.{i}.ff.net.0.", "gnn.layers.{i}.ff.net.0."),
        ("gnn.{i}.ff.net.3.", "gnn.layers.{i}.ff.net.2."),
    ),
}


class PublishedError(ValueError):
    """A published checkpoint whose layout or config archlab cannot map (message: the problem)."""


@dataclass(frozen=True)
class Published:
    """What was recognised in a published file."""

    origin: str  # "ppuda" or "ghn3"
    config: GHNConfig
    state_dict: dict[str, torch.Tensor]  # archlab names and shapes
    preset: str | None = None  # preset recognised from the weights (no config record)
    epoch: int | None = None


def _rules(kind: str) -> tuple[tuple[str, str], ...]:
    return _GNN[kind] + _COMMON


def _rename(name: str, rules: tuple[tuple[str, str], ...], reverse: bool) -> str | None:
    for pub, ours in rules:
        src, dst = (ours, pub) if reverse else (pub, ours)
        pattern = "^" + re.escape(src).replace(re.escape("{i}"), r"(\d+)")
        m = re.match(pattern, name)
        if m:
            head = dst.replace("{i}", m.group(1)) if m.groups() else dst
            return head + name[m.end():]
    return None


def origin_of(state: dict[str, Any]) -> str | None:
    """``"ghn2"``, ``"mlp"`` or ``"ghn3"`` for a published state dict, else None."""
    names = [str(k) for k in state]
    if not any(n.startswith("decoder.") for n in names) or "embed.weight" not in state:
        return None
    if any(n.startswith("gnn.gru.") for n in names):
        return "ghn2"
    if any(re.match(r"^gnn\.\d+\.ln1\.", n) for n in names):
        return "ghn3"
    if any(n.startswith("gnn.fc.") for n in names):
        return "mlp"
    return None


def to_archlab(state: dict[str, torch.Tensor], kind: str) -> dict[str, torch.Tensor]:
    """Published weight names/shapes -> archlab's (1x1-conv decoder weights become 2-D)."""
    out, unknown = {}, []
    for name, t in state.items():
        new = _rename(name, _rules(kind), reverse=False)
        if new is None:
            unknown.append(name)
            continue
        if new.startswith("decoder.") and t.dim() == 4:
            t = t.reshape(t.shape[0], t.shape[1])
        out[new] = t
    if unknown:
        raise PublishedError(f"unexpected weights {unknown[:5]}{' ...' if len(unknown) > 5 else ''} "
                             f"for a published {kind} GHN")
    return out


def from_archlab(state: dict[str, torch.Tensor], kind: str, conv_decoder: bool) -> dict[str, torch.Tensor]:
    """Inverse of :func:`to_archlab`; ``conv_decoder``: 1x1-conv decoder weights (ppuda)."""
    out = {}
    for name, t in state.items():
        new = _rename(name, _rules(kind), reverse=True)
        if new is None:
            raise PublishedError(f"archlab weight {name!r} has no published counterpart for {kind}")
        if conv_decoder and t.dim() == 2 and (new.startswith("decoder.conv.")
                                              or new.startswith("decoder.class_layer_predictor.")):
            t = t[:, :, None, None]
        out[new] = t.detach().cpu().clone()
    return out


def _image_size(num_classes: int, spatial: int) -> int:
    return 224 if spatial >= 16 or num_classes >= 1000 else 32


def ppuda_config(cfg: dict[str, Any]) -> GHNConfig:
    """GHNConfig of a ppuda ``config`` record (``GHN(**config)`` arguments)."""
    known = {"max_shape", "num_classes", "hypernet", "decoder", "weight_norm", "ve", "layernorm", "hid"}
    extra = sorted(set(cfg) - known - {"debug_level", "is_ghn2"})
    if extra:
        raise PublishedError(f"unknown ppuda config fields {extra}")
    hypernet, decoder = cfg.get("hypernet", "gatedgnn"), cfg.get("decoder", "conv")
    if hypernet not in ("gatedgnn", "mlp") or decoder != "conv":
        raise PublishedError(f"ppuda GHN with hypernet={hypernet!r}, decoder={decoder!r} is not supported "
                             "(archlab maps hypernet 'gatedgnn'/'mlp' with the 'conv' decoder)")
    ms = tuple(int(v) for v in cfg["max_shape"])
    return GHNConfig(kind="ghn2" if hypernet == "gatedgnn" else "mlp", hid=int(cfg.get("hid", 32)), layers=1,
                     max_shape=ms, num_classes=int(cfg["num_classes"]),
                     image_size=_image_size(int(cfg["num_classes"]), ms[2]),
                     ve_cutoff=50 if cfg.get("ve", False) else 1, layernorm=bool(cfg.get("layernorm", False)),
                     weight_norm=bool(cfg.get("weight_norm", False)), reference="ppuda")


def ghn3_config(cfg: dict[str, Any] | None, state: dict[str, torch.Tensor]) -> tuple[GHNConfig, str | None]:
    """GHNConfig of a ghn3 GHN-3 file: its ``config`` record, else sizes read off the weights
    (the way ghn3's ``from_pretrained`` reads them) and the matching preset name."""
    hid = int(state["embed.weight"].shape[1])
    num_classes = int(state["decoder.class_layer_predictor.1.weight"].shape[0])
    m = int(round(state["decoder.conv.2.weight"].shape[0] ** 0.5))
    s = 11 if state["shape_enc.embed_spatial.weight"].shape[0] == 9 else 16
    layers = sum(1 for n in state if re.match(r"^gnn\.\d+\.ln1\.weight$", n))
    preset = None
    if cfg is None:
        heads = 16 if hid > 64 else 8
        cfg = {"hid": hid, "layers": layers, "heads": heads, "num_classes": num_classes, "ve": True,
               "max_shape": (m, m, s, s), "weight_norm": True, "layernorm": "ln.weight" in state}
        preset = next((f"ghn3-{k}" for k, v in _GHN3_SIZES.items() if v == (hid, layers, heads)), "custom GHN-3")
    if cfg.get("is_ghn2"):
        raise PublishedError("config says is_ghn2 but the weights are a GHN-3's")
    ms = tuple(int(v) for v in (cfg["max_shape"] if not isinstance(cfg["max_shape"], int)
                                else (cfg["max_shape"],) * 2 + (s, s)))
    config = GHNConfig(kind="ghn3", hid=int(cfg["hid"]), layers=int(cfg["layers"]), heads=int(cfg["heads"]),
                       max_shape=ms, num_classes=int(cfg["num_classes"]),
                       image_size=_image_size(int(cfg["num_classes"]), ms[2]),
                       ve_cutoff=50 if cfg.get("ve", True) else 1,
                       layernorm=bool(cfg.get("layernorm", "ln.weight" in state)),
                       weight_norm=bool(cfg.get("weight_norm", True)), reference="ghn3")
    return config, preset


def read_published(path: Path, obj: Any) -> Published:
    """Recognise a loaded published file (``obj``: its unpickled content)."""
    cfg = obj.get("config") if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict) else None
    state = obj["state_dict"] if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict) else obj
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PublishedError("no state dict of tensors")
    kind = origin_of(state)
    if kind is None:
        raise PublishedError(f"weights {list(state)[:4]} are not a published GHN-2/MLP/GHN-3's")
    if cfg is not None and not isinstance(cfg, dict):
        cfg = vars(cfg) if isinstance(cfg, argparse.Namespace) else None
    epoch = obj.get("epoch") if isinstance(obj, dict) and isinstance(obj.get("epoch"), int) else None
    if kind == "ghn3":
        config, preset = ghn3_config(cfg, state)
        if preset is not None:
            log.warning("note: %s has no config record; recognised %s from its weights (hid %d, %d layers, "
                        "%d heads, max_shape %s)", path, preset, config.hid, config.layers, config.heads,
                        config.max_shape)
        return Published("ghn3", config, to_archlab(state, kind), preset, epoch)
    if cfg is None:
        if obj is not state:
            raise PublishedError("ppuda checkpoint without a 'config' record")
        raise PublishedError(f"a bare {kind} state dict (ghn3's ghn2.pt?) has no config record; "
                             "ppuda's checkpoints/*.pt files carry one")
    cfg = {k: v for k, v in cfg.items() if k not in ("debug_level",)}
    config = ppuda_config({k: v for k, v in cfg.items() if k != "is_ghn2"})
    if config.kind != kind:
        raise PublishedError(f"config says hypernet={cfg.get('hypernet')!r} but the weights are a {kind} GHN's")
    return Published("ppuda", config, to_archlab(state, kind), None, epoch)


def save_published(ghn, path: str | os.PathLike, layout: str = "ppuda") -> Path:
    """Write ``ghn`` in a published layout (``ppuda``, ``ghn3`` or ``ghn3-joblib``) atomically;
    ppuda's and ghn3's own loaders read these files."""
    c, path = ghn.config, Path(path)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown published layout {layout!r}; choose from {LAYOUTS}")
    if (layout == "ppuda") == (c.kind == "ghn3"):
        raise ValueError(f"a {c.kind} GHN cannot be written in the {layout} layout")
    state = from_archlab(ghn.state_dict(), c.kind, conv_decoder=layout == "ppuda")
    if layout == "ghn3-joblib":
        import io
        import pickle
        from collections import OrderedDict

        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pickle.dump(OrderedDict(state), buf, protocol=4)  # what joblib.dump writes for tensors
        return atomic_write_bytes(buf.getvalue(), path)
    if layout == "ppuda":
        config: dict[str, Any] = {"max_shape": tuple(c.max_shape), "num_classes": c.num_classes,
                                  "hypernet": "gatedgnn" if c.kind == "ghn2" else "mlp", "decoder": "conv",
                                  "weight_norm": c.weight_norm, "ve": c.virtual_edges, "layernorm": c.layernorm,
                                  "hid": c.hid}
    else:
        config = {"max_shape": tuple(c.max_shape), "num_classes": c.num_classes, "hypernet": "gatedgnn",
                  "decoder": "conv", "weight_norm": c.weight_norm, "ve": c.virtual_edges,
                  "layernorm": c.layernorm, "hid": c.hid, "layers": c.layers, "heads": c.heads, "is_ghn2": False}
    return atomic_save({"state_dict": state, "config": config, "epoch": 0}, path)
