"""Accuracy of networks whose parameters a GHN predicted, next to baselines: :func:`evaluate`.

Rows (one per architecture and method): ``ghn`` (the evaluated GHN), ``random`` (the network's
own default initialisation, e.g. torchvision's) and ``mlp-ghn`` (a trained MLP GHN, when given;
a baseline of another kind is refused, so the row's label is always true).
Every network is run with BatchNorm on *batch* statistics of each test batch (predicted
parameters come without running statistics), so all rows are comparable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from archlab._device import resolve_device
from archlab.data import dataset_info, load_dataset, make_loader
from archlab.engine._candidate import Candidate, from_genotype_file, from_models, from_split
from archlab.engine._common import topk_correct
from archlab.errors import UsageError
from archlab.ghn import CheckpointError, load_ghn, use_batch_stats
from archlab.space import input_kind

METHODS = ("ghn", "random", "mlp-ghn")
BN_NOTE = ("BatchNorm uses batch statistics of each test batch (predicted parameters have no "
           "running statistics); the same holds for every row.")


@torch.no_grad()
def accuracy(model: nn.Module, loader: Iterable, device: torch.device,
             max_images: int | None = None, num_classes: int | None = None) -> tuple[float, float, int]:
    """Top-1 and top-5 accuracy (%) of ``model`` on ``loader``, and the number of images used;
    with ``num_classes``, a model with another number of outputs is refused (UsageError).

    The model runs in eval mode (dropout and stochastic depth off; BatchNorm still on batch
    statistics) and every module is given back in the mode it came in."""
    return _evaluated(model, loader, device, max_images, num_classes, with_loss=False)[:3]


@torch.no_grad()
def scores(model: nn.Module, loader: Iterable, device: torch.device, max_images: int | None = None,
           num_classes: int | None = None) -> tuple[float, float, int, float]:
    """:func:`accuracy`'s top-1 %, top-5 % and image count, and the mean cross-entropy loss
    (a label outside the model's outputs is refused, naming both)."""
    return _evaluated(model, loader, device, max_images, num_classes, with_loss=True)


def _evaluated(model: nn.Module, loader: Iterable, device: torch.device, max_images: int | None,
               num_classes: int | None, with_loss: bool) -> tuple[float, float, int, float]:
    """:func:`_scores` in eval mode (BatchNorm on batch statistics), every module's mode given back."""
    model.to(device)
    use_batch_stats(model)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        return _scores(model, loader, device, max_images, num_classes, with_loss)
    finally:
        for m, training in modes:
            m.training = training


def _scores(model: nn.Module, loader: Iterable, device: torch.device, max_images: int | None,
            num_classes: int | None, with_loss: bool) -> tuple[float, float, int, float]:
    c1 = c5 = n = 0
    loss_sum = 0.0
    for x, y in loader:
        if max_images is not None and n >= max_images:
            break
        if max_images is not None:
            x, y = x[: max_images - n], y[: max_images - n]
        out = _first_forward(model, x.to(device)) if n == 0 else model(x.to(device))
        out = out[0] if isinstance(out, tuple) else out
        if num_classes is not None and (out.dim() != 2 or out.shape[1] != num_classes):
            raise UsageError(f"{type(model).__name__} outputs {tuple(out.shape[1:])} per image but the "
                             f"dataset has {num_classes} classes; build its head with {num_classes} outputs")
        y = y.to(device)
        a, b = topk_correct(out.float(), y)
        if with_loss:
            if int(y.max()) >= out.shape[-1]:
                raise UsageError(f"{type(model).__name__} has {out.shape[-1]} outputs but a label is "
                                 f"{int(y.max())}; build its head with enough outputs")
            loss_sum += float(F.cross_entropy(out.float(), y, reduction="sum"))
        c1, c5, n = c1 + a, c5 + b, n + len(y)
    return 100.0 * c1 / max(1, n), 100.0 * c5 / max(1, n), n, (loss_sum / n if n and with_loss else math.nan)


def _first_forward(model: nn.Module, x: torch.Tensor):
    """``model(x)``; a shape error on the first batch means the model cannot take these images."""
    try:
        return model(x)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as e:
        size = "x".join(map(str, x.shape[1:]))
        raise UsageError(f"{type(model).__name__} cannot run on the dataset's {size} images: "
                         f"{str(e).splitlines()[0][:300]}") from e


def fixed_subset(ds, max_images: int | None, seed: int = 0):
    """``ds`` itself, or a fixed random subset of ``max_images`` items (seeded), so that a
    class-ordered test set (e.g. an ImageFolder) is not cut to its first classes."""
    if max_images is None or max_images >= len(ds):
        return ds
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds), generator=g)[:max_images].sort().values.tolist()
    return torch.utils.data.Subset(ds, idx)


def open_ghn(ghn_or_path: Any, map_location: Any = "cpu"):
    """A GHN, or the one loaded from a checkpoint path (``None`` stays ``None``).

    A loaded GHN remembers its file (``ghn.source``, named by later errors); a checkpoint whose
    weights are not all finite is refused here, naming the file and a bad tensor.
    """
    if ghn_or_path is None or not isinstance(ghn_or_path, (str, os.PathLike)):
        return ghn_or_path
    if not os.path.exists(ghn_or_path):
        raise CheckpointError(f"checkpoint not found: {str(ghn_or_path)!r}")
    ghn = load_ghn(ghn_or_path, map_location=map_location)
    ghn.source = str(ghn_or_path)
    bad = [k for k, t in ghn.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(f"{ghn_or_path}: {len(bad)} weight tensors hold NaN/inf (e.g. {bad[0]}); "
                              "the GHN would predict non-finite parameters; use another checkpoint")
    return ghn


def _positive(**values: int | None) -> None:
    for name, v in values.items():
        if v is not None and v < 1:
            raise UsageError(f"{name} must be >= 1, got {v}")


def population(split: str | None = None, models: list[str] | None = None,
               genotypes: str | os.PathLike | None = None, limit: int | None = None,
               width: int | None = None, split_root: str | os.PathLike | None = None) -> list[Candidate]:
    """The candidates named by exactly one of ``split``, ``models`` or a ``genotypes`` file."""
    given = [k for k, v in (("split", split), ("models", models), ("genotypes", genotypes)) if v is not None]
    if len(given) != 1:
        raise UsageError(f"give exactly one of split=, models=, genotypes=; got {given or 'none'}")
    if split:
        return from_split(split, root=split_root, limit=limit, width=width)
    if genotypes:
        return from_genotype_file(genotypes, limit=limit, width=width)
    specs = models.split(",") if isinstance(models, str) else list(models)
    return from_models(specs)[:limit]


def evaluate_candidates(candidates: Iterable[Candidate], ghns: dict[str, Any], loader: Iterable,
                        num_classes: int, image_size: int, device: Any = "cpu", adapt: bool = True,
                        seed: int = 0, progress: bool = True, input_size: Any = None):
    """The data-free core of :func:`evaluate`: one row per candidate and method on ``loader``.

    ghns: ``{"ghn": GHN, "mlp-ghn": GHN or None}``; the ``random`` row (the network's own
    initialisation) is always computed. Every network starts from ``torch.manual_seed(seed)``.
    ``input_size``: the size GHN graphs are built at (default: native, else the GHN's).
    """
    import pandas as pd

    dev = resolve_device(device)
    candidates = list(candidates)
    rows: list[dict[str, Any]] = []
    for cand in tqdm(candidates, desc="evaluate", disable=not progress):
        for method in METHODS:
            g = ghns.get(method)
            if method != "random" and g is None:
                continue
            torch.manual_seed(seed)
            model = cand.build(num_classes, image_size, adapt=adapt)
            if g is not None:
                g.predict(model, input_size=input_size)
            top1, top5, n = accuracy(model, loader, dev, num_classes=num_classes)
            rows.append({"id": cand.id, "source": cand.source, "method": method, "top1": top1,
                         "top5": top5, "n_images": n, "n_params": sum(p.numel() for p in model.parameters())})
            del model
    return pd.DataFrame(rows, columns=["id", "source", "method", "top1", "top5", "n_images", "n_params"])


def evaluate(
    ghn: Any,
    split: str | None = None,
    models: list[str] | None = None,
    dataset: str = "digits",
    data_dir: str | None = None,
    baseline: Any = None,
    download: bool = False,
    limit: int | None = None,
    max_images: int | None = None,  # a fixed random subset of the test set
    batch_size: int = 64,
    width: int | None = None,
    adapt: bool = True,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
    genotypes: str | os.PathLike | None = None,
    candidates: list[Candidate] | None = None,
    input_size: Any = None,
):
    """Top-1/top-5 (%) per architecture and method on the test split of ``dataset``.

    ghn, baseline: a GHN or a checkpoint path (``baseline``: a trained MLP GHN; None = not given).
    What to evaluate: ``candidates``, or one of ``split`` (a shipped split name), ``models`` (model
    specs) or ``genotypes`` (a JSON Lines file); ``width`` overrides the split's own width.
    Returns a long DataFrame (``id, source, method, top1, top5, n_images, n_params``) whose
    ``attrs["notes"]`` say how BN was run and which baselines are missing; see :func:`summarize`.
    ``input_size``: the size GHN graphs are built at (default: native, else the GHN's).
    """
    _positive(limit=limit, max_images=max_images, batch_size=batch_size, width=width)
    dev = resolve_device(device)
    info = dataset_info(dataset)
    ghns = {"ghn": open_ghn(ghn), "mlp-ghn": open_ghn(baseline)}
    for key, g in ghns.items():
        if g is not None:
            g.to(dev).eval()
            name = getattr(g, "source", None) or key
            kind = getattr(getattr(g, "config", None), "kind", None)
            if key == "mlp-ghn" and kind not in (None, "mlp"):
                raise UsageError(f"baseline {name} is a {kind} GHN; the baseline row is an MLP GHN "
                                 "(train one with `archlab train --ghn mlp`)")
            nc = getattr(getattr(g, "config", None), "num_classes", info.num_classes)
            if nc != info.num_classes:
                raise UsageError(f"{name} predicts {nc}-class classifiers but {dataset} has "
                                 f"{info.num_classes} classes")
    if candidates is None:
        candidates = population(split, models, genotypes, limit, width)
    test = fixed_subset(load_dataset(dataset, data_dir, split="test", download=download), max_images, seed)
    loader = make_loader(test, batch_size, shuffle=False)
    df = evaluate_candidates(candidates, ghns, loader, info.num_classes, info.image_size, dev,
                             adapt=adapt, seed=seed, progress=progress, input_size=input_size)
    notes = [BN_NOTE]
    if ghns["mlp-ghn"] is None:
        notes.append("mlp-ghn baseline: not provided (pass baseline= / --baseline-ckpt).")
    if adapt and input_kind(info.image_size) == "cifar" and any(not c.is_genotype for c in candidates):
        notes.append("torchvision models adapted to small images (3x3 stride-1 stem, no stem max-pool).")
    df.attrs["notes"] = notes
    df.attrs["dataset"] = dataset
    return df


def summarize(df) -> Any:
    """Mean and standard error over architectures, one row per method (missing baselines kept)."""
    import pandas as pd

    out = []
    for method in METHODS:
        sub = df[df["method"] == method]
        if len(sub) == 0:
            out.append({"method": method, "n_archs": 0, "top1_mean": math.nan, "top1_se": math.nan,
                        "top5_mean": math.nan, "top5_se": math.nan, "status": "not provided"})
            continue
        row: dict[str, Any] = {"method": method, "n_archs": len(sub)}
        for k in ("top1", "top5"):
            row[f"{k}_mean"] = float(sub[k].mean())
            row[f"{k}_se"] = float(sub[k].std(ddof=1) / math.sqrt(len(sub))) if len(sub) > 1 else 0.0
        row["status"] = "ok"
        out.append(row)
    return pd.DataFrame(out)


def format_summary(summary) -> str:
    """A plain-text table: ``method  n  top1 (mean ± se)  top5 (mean ± se)``."""
    lines = [f"{'method':<10} {'n':>4}  {'top-1 %':>14}  {'top-5 %':>14}"]
    for r in summary.to_dict("records"):
        if r["status"] != "ok":
            lines.append(f"{r['method']:<10} {0:>4}  {'not provided':>14}  {'':>14}")
            continue
        t1 = f"{r['top1_mean']:.2f} ± {r['top1_se']:.2f}"
        t5 = f"{r['top5_mean']:.2f} ± {r['top5_se']:.2f}"
        lines.append(f"{r['method']:<10} {r['n_archs']:>4}  {t1:>14}  {t5:>14}")
    return "\n".join(lines)
