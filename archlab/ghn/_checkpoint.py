"""Self-describing GHN checkpoints.

A checkpoint is a ``torch.save`` d dict::

    {"format": "archlab.ghn/1", "config": GHNConfig fields, "state_dict": ..., "op_types": [...],
     "image_size": int, "archlab_version": str, "extra": dict}

The configuration is stored, never inferred from weight names. Loading uses
``torch.load(weights_only=True)``; anything else (truncated or corrupt files, plain state
dicts) raises :class:`CheckpointError` naming file and problem. Published ppuda / ghn3 files
are recognised and mapped by :mod:`._published` (their own config records, not weight names,
except for ghn3's bare state dicts, whose recognised preset is stated).
"""

from __future__ import annotations

import argparse
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from archlab._io import atomic_save
from archlab.errors import ArchlabError
from archlab.graph._vocab import OP_TYPES

from ._config import GHNConfig
from ._model import build_ghn

FORMAT = "archlab.ghn/1"
_KEYS = ("format", "config", "state_dict", "op_types")


class CheckpointError(ArchlabError, ValueError):
    """A file is not a loadable archlab GHN checkpoint."""


def save_ghn(ghn, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write ``ghn`` to ``path`` atomically (temporary file + ``os.replace``); returns the path.

    ``extra`` (epoch, metrics, ...) must hold plain Python values or tensors.
    """
    from archlab import __version__

    path = Path(path)
    state = {k: v.detach().cpu() for k, v in ghn.state_dict().items()}
    payload = {
        "format": FORMAT,
        "config": ghn.config.to_dict(),
        "state_dict": state,
        "op_types": list(OP_TYPES),
        "image_size": int(ghn.config.image_size),
        "archlab_version": __version__,
        "extra": dict(extra or {}),
    }
    return atomic_save(payload, path)


def load_torch_file(path: str | os.PathLike, map_location: Any = "cpu",
                    what: str = "torch checkpoint") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only, so a pickle
    planted in the file cannot run code. Any failure raises :class:`CheckpointError` naming
    ``path`` and the problem; ``what`` says what the file should have been."""
    path = Path(path)
    if not path.is_file():
        what_dir = "a directory" if path.is_dir() else "no such file"
        raise CheckpointError(f"{path}: {what_dir}, expected a {what}")
    try:
        with warnings.catch_warnings():  # foreign pickles may warn about their protocol
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure to unpickle is reported the same way
        first = str(e).splitlines()[0][:200] if str(e) else ""
        if "Weights only load failed" in first:
            first = _unsafe_global(str(e)) or "it holds objects other than tensors and plain containers"
        raise CheckpointError(
            f"{path}: not a readable {what} (truncated, corrupt, not a torch file, or holding "
            f"objects other than tensors and plain containers, which are never unpickled): "
            f"{type(e).__name__}: {first}") from None


def _unsafe_global(message: str) -> str:
    """What torch's weights-only refusal refused, without its advice to allow it."""
    m = re.search(r"Unsupported (global|operand)[: ]+(GLOBAL )?(\S+)", message)
    if m is None:
        return ""
    if m.group(1) == "operand":
        return f"it uses pickle operation {m.group(3)}, which only code-running pickles need"
    return f"it refers to {m.group(3)}, which is not a tensor or a plain container"


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """The checked checkpoint dict of ``path`` (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    ckpt = load_torch_file(path, map_location)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: expected a checkpoint dict, found {type(ckpt).__name__}")
    if ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an archlab GHN checkpoint ({_describe_foreign(ckpt)})")
    missing = [k for k in _KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    if not isinstance(ckpt["config"], dict):
        raise CheckpointError(f"{path}: 'config' must be a dict, found {type(ckpt['config']).__name__}")
    ops = list(ckpt["op_types"])
    if ops != list(OP_TYPES):
        raise CheckpointError(f"{path}: op vocabulary differs from this archlab's "
                              f"(checkpoint {ops}, expected {list(OP_TYPES)})")
    return ckpt


def load_ghn(path: str | os.PathLike, map_location: Any = "cpu"):
    """Load a GHN saved by :func:`save_ghn`, or a published one (ppuda GHN-2/MLP ``*.pt``, ghn3
    GHN-3 torch or joblib file: see :mod:`._published`); raises :class:`CheckpointError` for
    anything else. A published GHN's ``source`` attribute says what was recognised."""
    published = _read_published(Path(path), map_location)
    if published is not None:
        ghn = _build(path, published.config, published.state_dict, map_location)
        what = published.preset or "config record"
        ghn.source = f"{Path(path).name} ({published.origin} {published.config.kind}, config from {what})"
        return ghn
    ckpt = read_checkpoint(path, map_location)
    try:
        config = GHNConfig.from_dict(ckpt["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: invalid GHN config {ckpt['config']!r}: {e}") from e
    return _build(path, config, ckpt["state_dict"], map_location)


def _build(path, config: GHNConfig, state: Any, map_location: Any):
    ghn = build_ghn(config)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: 'state_dict' must be a dict, found {type(state).__name__}")
    expected = ghn.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    bad = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or bad:
        parts = []
        if missing:
            parts.append(f"missing weights {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected weights {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if bad:
            parts.append("shape mismatch " + ", ".join(
                f"{k}: {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in bad[:5]))
        raise CheckpointError(f"{path}: weights do not match config {config}: " + "; ".join(parts))
    ghn.load_state_dict(state)
    return ghn.to(map_location) if isinstance(map_location, (str, torch.device)) else ghn


def _read_published(path: Path, map_location: Any):
    """The :class:`~._published.Published` content of ``path``, or None if it is not a published
    GHN file (then :func:`read_checkpoint` reports what it is)."""
    from ._published import CONVERT_HINT, PublishedError, origin_of, read_published
    from ._safe_pickle import PickleRefused, is_pickle_bytes, load_tensor_pickle

    if not path.is_file():
        return None
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK"):  # torch zip file: ghn3's torch checkpoints also hold an argparse.Namespace
        with torch.serialization.safe_globals([argparse.Namespace]):
            try:
                obj = load_torch_file(path, map_location)
            except CheckpointError:
                return None
    elif is_pickle_bytes(head):  # joblib.dump / plain pickle (GHN-3 published files)
        try:
            obj = load_tensor_pickle(path)
        except PickleRefused as e:
            raise CheckpointError(f"{path}: not a readable GHN checkpoint: a pickle/joblib file that archlab "
                                  f"does not unpickle ({e}); "
                                  + CONVERT_HINT.format(p=path)) from None
        except Exception as e:  # noqa: BLE001 - truncated/corrupt pickles all read the same
            raise CheckpointError(f"{path}: not a readable pickle/joblib file (truncated or corrupt): "
                                  f"{type(e).__name__}: {e}") from None
    else:
        return None
    if isinstance(obj, dict) and "format" in obj:
        return None
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or origin_of(state) is None:
        if isinstance(obj, dict) and not head.startswith(b"PK"):
            raise CheckpointError(f"{path}: a pickle of {len(obj)} entries that is not a published GHN state dict")
        return None
    try:
        return read_published(path, obj)
    except (PublishedError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: published GHN checkpoint that archlab cannot map: {e}") from None


def _describe_foreign(ckpt: dict) -> str:
    keys = list(ckpt)[:6]
    if "format" in ckpt:
        return f"format {ckpt['format']!r}, expected {FORMAT!r}"
    sd = ckpt.get("state_dict")
    if isinstance(sd, dict) and "config" in ckpt:
        names = " ".join(map(str, sd))
        origin = "GHN-2 (ppuda)" if "gnn.gru." in names else "GHN-3 (ghn3)" if "gnn.0." in names else "foreign"
        return f"looks like a published {origin} checkpoint with keys {keys}; it has no archlab format tag"
    if all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return f"a plain state_dict of {len(ckpt)} tensors (e.g. {keys[:3]}); the GHN config is not stored"
    return f"no 'format' key; top-level keys {keys}"


def fingerprint(ghn) -> str:
    """SHA-256 (hex, first 16 digits) of a GHN's config and weights: the same for the same GHN
    however it was saved or loaded, so files derived from two GHNs can be told apart."""
    import hashlib
    import json

    h = hashlib.sha256(json.dumps(ghn.config.to_dict(), sort_keys=True, default=str).encode())
    for name, t in sorted(ghn.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
