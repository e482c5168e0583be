"""Turn a model spec into an ``nn.Module`` and find a model's native input size.

A spec is a torchvision model name (``"resnet50"``) or ``"path/to/file.py:ClassName"``.
Native input sizes come from registered hooks (first match wins), so new families are added by
:func:`register_input_size`, not by editing a chain of ``isinstance`` checks.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import operator
import sys
from collections.abc import Callable
from pathlib import Path

import torch.nn as nn

from ._types import GraphError

InputSizeHook = Callable[[nn.Module], "int | tuple[int, ...] | None"]
_INPUT_SIZE_HOOKS: list[tuple[str, InputSizeHook]] = []


def register_input_size(name: str) -> Callable[[InputSizeHook], InputSizeHook]:
    """Register ``fn(model) -> size | None`` telling a model family's native input size."""

    def deco(fn: InputSizeHook) -> InputSizeHook:
        _INPUT_SIZE_HOOKS.append((name, fn))
        return fn

    return deco


@register_input_size("declared")
def _declared(model: nn.Module):
    for attr in ("input_size", "expected_input_sz"):  # archlab, ppuda
        v = getattr(model, attr, None)
        if isinstance(v, (int, tuple, list)):
            return v
    return None


@register_input_size("torchvision-inception")
def _inception(model: nn.Module):
    return 299 if type(model).__name__ == "Inception3" else None


@register_input_size("torchvision-vit")
def _vit(model: nn.Module):
    v = getattr(model, "image_size", None)
    return v if type(model).__name__ == "VisionTransformer" and isinstance(v, int) else None


def native_input_size(model: nn.Module) -> tuple[int, int, int]:
    """The input size ``(C, H, W)`` a model is built for (224 for ImageNet models by default)."""
    for _, hook in _INPUT_SIZE_HOOKS:
        size = hook(model)
        if size is not None:
            return normalize_input_size(size)
    return (3, 224, 224)


def normalize_input_size(size: int | tuple[int, ...] | list[int] | str) -> tuple[int, ...]:
    """Accept ``224``, ``(224, 224)``, ``(3, 224, 224)`` or ``"3x224x224"`` / ``"224x224"`` /
    ``"224"``; return ``(C, H, W)``. Anything else raises :class:`GraphError`, including
    ``"3x32"`` (a ``CxH`` with the width missing, not a 3-pixel-high ``HxW``)."""
    given = size
    if isinstance(size, str):
        parts = size.strip().lower().split("x")
        if not all(p.strip().isdigit() for p in parts):
            raise GraphError(_SIZE_FORMS.format(given))
        size = [int(p) for p in parts]
    if isinstance(size, bool) or (isinstance(size, (tuple, list)) and any(isinstance(d, bool) for d in size)):
        raise GraphError(_SIZE_FORMS.format(given))
    try:
        dims = [operator.index(size)] if not isinstance(size, (tuple, list)) else [operator.index(s) for s in size]
    except TypeError:
        raise GraphError(_SIZE_FORMS.format(given)) from None
    if not 1 <= len(dims) <= 3:
        raise GraphError(_SIZE_FORMS.format(given))
    if len(dims) == 2 and dims[0] <= _MAX_CHANNELS < dims[1]:
        raise GraphError(_SIZE_FORMS.format(given) + f"; {given!r} reads as CxH with W missing")
    if any(d <= 0 for d in dims):
        raise GraphError(f"input size {given!r} must have positive dimensions")
    return (3, dims[0], dims[0]) if len(dims) == 1 else (3, *dims) if len(dims) == 2 else tuple(dims)


_SIZE_FORMS = "input size {!r} must be CxHxW (3x224x224), HxW (224x224) or N (224)"
_MAX_CHANNELS = 4  # "3x32": a leading value this small is a channel count, not a height


def check_num_classes(num_classes: int | None) -> int | None:
    """``num_classes`` itself if ``None`` or a positive integer, else :class:`GraphError`."""
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 1):
        raise GraphError(f"num_classes must be a positive integer, got {num_classes!r}")
    return num_classes


def suggest(name: str, names: list[str], n: int = 3) -> list[str]:
    """The known ``names`` closest to ``name`` (typos first, then names containing it)."""
    key = name.lower().replace("-", "_")
    close = difflib.get_close_matches(key, names, n=n, cutoff=0.6)
    close += [m for m in names if key in m and m not in close]
    return close[:n]


def resolve_model(spec: str | nn.Module, num_classes: int | None = None) -> nn.Module:
    """Build the model named by ``spec`` (torchvision name or ``file.py:ClassName``), untrained."""
    check_num_classes(num_classes)
    if isinstance(spec, nn.Module):
        return spec
    if not isinstance(spec, str) or not spec:
        raise GraphError(f"model spec must be a torchvision name or 'file.py:ClassName', got {spec!r}")
    if ":" in spec and spec.split(":", 1)[0].endswith(".py"):
        return _from_file(spec, num_classes)
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    if spec not in names:
        close = suggest(spec, names)
        hint = (f"; did you mean {', '.join(close[:-1]) + ' or ' if close[1:] else ''}{close[-1]}?" if close
                else "; see torchvision.models.list_models()")
        raise GraphError(f"unknown model {spec!r}: not a torchvision classification model{hint} "
                         f"(custom models: path/to/file.py:ClassName)")
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    return torchvision.models.get_model(spec, weights=None, **kwargs)


def _from_file(spec: str, num_classes: int | None) -> nn.Module:
    path_s, cls_name = spec.rsplit(":", 1)
    path = Path(path_s)
    if not path.is_file():
        raise GraphError(f"model file {str(path)!r} does not exist (spec {spec!r})")
    mod_name = f"archlab_user_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[mod_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:
        raise GraphError(f"could not import {str(path)!r}: {type(e).__name__}: {e}") from e
    cls = getattr(module, cls_name, None)
    if cls is None:
        found = sorted(n for n, v in vars(module).items()
                       if inspect.isclass(v) and issubclass(v, nn.Module) and v.__module__ == mod_name)
        raise GraphError(f"{str(path)!r} has no class {cls_name!r}; nn.Module classes found: {found or 'none'}")
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise GraphError(f"{cls_name!r} in {str(path)!r} is not an nn.Module subclass")
    kwargs = {}
    if num_classes is not None and "num_classes" in inspect.signature(cls).parameters:
        kwargs["num_classes"] = num_classes
    try:
        return cls(**kwargs)
    except Exception as e:
        raise GraphError(f"could not construct {cls_name}() from {str(path)!r}: {type(e).__name__}: {e}") from e
