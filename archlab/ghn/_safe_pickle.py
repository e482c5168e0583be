"""Read joblib / plain-pickle files of tensors without running code from them.

GHN-3's published files (``ghn3tm8.pt``, ``ghn3xlm16.pt``, ...) are ``joblib.dump`` of a state
dict: an ordinary pickle (optionally zlib/gzip/bz2/lzma-compressed) whose only globals are
``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and
``torch.storage._load_from_bytes``. :func:`load_tensor_pickle` unpickles with an allow-list of
exactly those; the bytes of each storage are read with ``torch.load(weights_only=True)``. Any
other global (or joblib's raw numpy-array records) is refused with a :class:`PickleRefused`.
"""

from __future__ import annotations

import bz2
import collections
import gzip
import io
import lzma
import pickle
import zlib
from pathlib import Path
from typing import Any

import torch

# magic bytes -> decompressor (joblib's compressors from the standard library)
_COMPRESSED = (
    (b"\x1f\x8b", gzip.decompress),
    (b"BZh", bz2.decompress),
    (b"\xfd7zXZ", lzma.decompress),
    (b"\x5d\x00\x00", lzma.decompress),  # joblib's "lzma" (LZMA-alone) format
    (b"x", zlib.decompress),
)


class PickleRefused(ValueError):
    """The pickle needs a global outside the allow-list (or is no pickle at all)."""


def _storage_from_bytes(data: bytes):
    return torch.load(io.BytesIO(data), weights_only=True)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
}


class _TensorUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise PickleRefused(f"it refers to {module}.{name}, which is not a tensor or a plain "
                                "container") from None

    def persistent_load(self, pid: Any) -> Any:
        raise PickleRefused("it uses persistent ids (a torch zip file saved in the legacy format)")


def is_pickle_bytes(head: bytes) -> bool:
    """Whether ``head`` (first bytes of a file) starts a pickle or a joblib-compressed stream."""
    return head[:1] == b"\x80" or any(head.startswith(m) for m, _ in _COMPRESSED)


def load_tensor_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` allowing only tensors, ordered dicts and plain containers."""
    data = Path(path).read_bytes()
    if data[:1] != b"\x80":
        for magic, decompress in _COMPRESSED:
            if data.startswith(magic):
                try:
                    data = decompress(data)
                except Exception as e:  # noqa: BLE001 - any decompression failure reads the same
                    raise PickleRefused(f"it looks compressed but does not decompress: {e}") from None
                break
    if data[:1] != b"\x80":
        raise PickleRefused("it is neither a pickle nor a compressed pickle")
    obj = _TensorUnpickler(io.BytesIO(data)).load()
    return obj
