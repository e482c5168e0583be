"""Deferred imports of heavy or optional libraries, with an install hint when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from archlab.errors import MissingDependencyError

# import name -> pip distribution name, where they differ
_DISTRIBUTIONS = {"umap": "umap-learn", "sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow"}


def require(module: str, feature: str = "") -> ModuleType:
    """Import ``module`` (e.g. ``"umap"``) or raise :class:`MissingDependencyError` with a hint.

    ``feature`` names what needs it (``"archlab map"``), so the message says why it is asked for.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        dist = _DISTRIBUTIONS.get(top, top)
        why = f" for {feature}" if feature else ""
        raise MissingDependencyError(
            f"{top!r} is needed{why} but is not installed ({e}); install it with `pip install {dist}`"
        ) from e
