"""Turn a model spec into an ``nn.Module`` and find a model's native input size.

A spec is a torchvision model name (``"resnet50"``) or ``"path/to/file.py:ClassName"``.
Native input sizes come from registered hooks (first match wins), so new families are added by
:func:`register_input_size`, not by editing a chain of ``isinstance`` checks.
"""

from __future__ import annotations

import importlib.util
import inspect
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
    """Accept ``224``, ``(224, 224)``, ``(3, 224, 224)`` or ``"3x224x224"``; return ``(C, H, W)``."""
    if isinstance(size, str):
        try:
            size = tuple(int(s) for s in size.lower().split("x"))
        except ValueError:
            raise GraphError(f"input size {size!r} is not of the form 3x224x224") from None
        if len(size) == 1:
            size = size[0]
    if isinstance(size, int):
        size = (3, size, size)
    size = tuple(int(s) for s in size)
    if len(size) == 2:
        size = (3, *size)
    if not size or any(s <= 0 for s in size):
        raise GraphError(f"input size {size} must have positive dimensions")
    return size


def resolve_model(spec: str | nn.Module, num_classes: int | None = None) -> nn.Module:
    """Build the model named by ``spec`` (torchvision name or ``file.py:ClassName``), untrained."""
    if isinstance(spec, nn.Module):
        return spec
    if not isinstance(spec, str) or not spec:
        raise GraphError(f"model spec must be a torchvision name or 'file.py:ClassName', got {spec!r}")
    if ":" in spec and spec.split(":", 1)[0].endswith(".py"):
        return _from_file(spec, num_classes)
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    if spec not in names:
        close = [n for n in names if spec.lower().replace("-", "_") in n][:8]
        hint = f"; did you mean {', '.join(close)}?" if close else "; see torchvision.models.list_models()"
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
