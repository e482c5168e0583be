"""Candidates: the one notion of "a named architecture to evaluate, embed, rank or search".

A :class:`Candidate` is a DeepNets-1M genotype (from a shipped or generated split, a genotype
file, the train stream or a search trial), a torchvision model name, or ``path/to/file.py:Class``.
Every population archlab passes around is a list of candidates, and every result file (embeddings,
evaluations, rankings, shift scores, search trials) joins on :attr:`Candidate.id`.

Id scheme (stable across runs and verbs):

- split member ``i`` of split ``s``: ``"s/i"`` (``test/3``; the index of the record in the file)
- genotype file ``runs/top.jsonl`` record ``i``: ``"top/i"``, unless the record carries its own
  ``candidate_id`` (search exports do), which is kept
- the ``i``-th architecture of the train stream with seed ``k``: ``"train/i"`` (``"train-s{k}/i"``
  for ``k != 0``)
- a search trial's genotype at width ``C``: ``"search/<first 12 hex digits of the genotype hash>-C<C>"``
  (``search/3fa2c09b1e77-C32``: the same cell at two widths is two architectures)
- a torchvision model: its name (``resnet50``); a file model: the spec as given (``my.py:Net``)
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from archlab.engine._adapt import adapt_to_small_images
from archlab.errors import UsageError
from archlab.graph import OP_TYPES, build_graph, normalize_input_size, resolve_model
from archlab.space import (
    Genotype,
    analytic_stats,
    build_network,
    genotype_graph,
    input_kind,
    read_split,
    train_stream,
)
from archlab.space._splits import _check_split
from archlab.space._storage import split_path

SOURCES = ("split", "genotypes", "train", "search", "torchvision", "file")
DEFAULT_WIDTH = 32


@dataclass(frozen=True)
class Candidate:
    """A named architecture. ``genotype`` is set for DeepNets-1M candidates, ``spec`` for models.

    ``source`` is the split name (``test``, ``wide``, ...), ``genotypes``, ``train``, ``search``,
    ``torchvision`` or ``file``; ``width`` is the channel width ``C`` a genotype is built with.
    """

    id: str
    source: str
    genotype: Genotype | None = None
    spec: str | None = None
    width: int = DEFAULT_WIDTH
    info: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if (self.genotype is None) == (self.spec is None):
            raise ValueError(f"candidate {self.id!r}: give exactly one of genotype= or spec=")

    @property
    def is_genotype(self) -> bool:
        return self.genotype is not None

    def build(self, num_classes: int, image_size: int, adapt: bool = True) -> nn.Module:
        """A freshly initialised network for ``num_classes`` classes and ``image_size`` images.

        Genotypes get DeepNets-1M's small-image (<= 64 px) or ImageNet stem; torchvision models on
        small images get their stems adapted (stride/pooling) unless ``adapt=False``.
        """
        kind = input_kind(image_size)
        if self.genotype is not None:
            return build_network(self.genotype, num_classes, input=kind, C=self.width, image_size=image_size)
        model = resolve_model(self.spec, num_classes=num_classes)
        return adapt_to_small_images(model, image_size) if adapt and kind == "cifar" else model

    def graph(self, num_classes: int, image_size: int, input_size: Any = None):
        """The architecture graph of :meth:`build`'s network, as ``GHN.predict`` sees it.

        Genotypes: built straight from the genotype (:func:`archlab.space.genotype_graph`, equal
        to the traced graph, ~50x faster); models: traced at ``input_size`` (default: native,
        else ``image_size``).
        """
        if self.genotype is not None and input_size is None:
            return genotype_graph(self.genotype, num_classes, input=input_kind(image_size), C=self.width,
                                  image_size=image_size)
        return build_graph(self.build(num_classes, image_size), input_size=input_size, fallback_size=image_size)

    def metadata(self, num_classes: int = 10, image_size: int = 32, graph: Any = None,
                 input_size: Any = None) -> dict[str, Any]:
        """Parameters, FLOPs (multiply-accumulates of one image), depth (longest path of the
        graph, in nodes), width, node count and node counts by type (``nodes_<op>``).

        Genotypes: analytic (no network is built); models: from the built network, its graph
        (``graph`` if already built, else :meth:`graph`) and one forward pass under
        ``torch.utils.flop_counter``.
        """
        if graph is None:
            graph = self.graph(num_classes, image_size, input_size)
        model = None if self.genotype is not None else self.build(num_classes, image_size)
        if self.genotype is not None:
            stats = analytic_stats(self.genotype, C=self.width, num_classes=num_classes,
                                   input=input_kind(image_size), image_size=image_size)
            params, flops = int(stats["params"]), int(stats["flops"])
        else:
            params = sum(p.numel() for p in model.parameters() if p.requires_grad)
            sizes = [normalize_input_size(input_size)] if input_size is not None else []
            flops = _macs(model, [*sizes, (3, image_size, image_size), tuple(graph.input_size)])
        row: dict[str, Any] = {"params": params, "flops": flops, "depth": _depth(graph),
                               "width": self.width if self.genotype is not None else _width(model),
                               "num_nodes": graph.num_nodes}
        counts = graph.op_counts()
        row.update({f"nodes_{op}": int(counts.get(op, 0)) for op in OP_TYPES})  # fixed columns
        return row


def _depth(graph) -> int:
    depth = [1] * graph.num_nodes
    for s, d in graph.edge_index.T:  # sources precede targets
        depth[d] = max(depth[d], depth[s] + 1)
    return max(depth) if depth else 0


def _width(model: nn.Module) -> int:
    widths = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    widths += [m.out_features for m in model.modules() if isinstance(m, nn.Linear)]
    return int(max(widths)) if widths else 0


def _macs(model: nn.Module, sizes: list[tuple[int, ...]]) -> int:
    """Multiply-accumulates of one image at the first of ``sizes`` the model runs at."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    error: Exception | None = None
    try:
        for size in dict.fromkeys(sizes):
            try:
                with torch.no_grad(), FlopCounterMode(display=False) as counter:
                    model(torch.zeros(1, *size))
                return int(counter.get_total_flops() // 2)
            except RuntimeError as e:
                error = e
    finally:
        model.train(was_training)
    tried = ", ".join("x".join(map(str, s)) for s in dict.fromkeys(sizes))
    raise UsageError(f"{type(model).__name__} cannot run at input size {tried}: {error}; "
                     "pass --input-size CxHxW with a size it runs at")


# --- populations ------------------------------------------------------------------------------

def from_split(name: str, root: str | os.PathLike | None = None, limit: int | None = None,
               width: int | None = None) -> list[Candidate]:
    """The candidates of a shipped split (or one generated into ``root``), each at the width its
    record was generated for (32; ``wide``: 128) unless ``width`` is given."""
    _check_split(name)
    path = split_path(name, root)
    if not path.is_file():
        raise UsageError(f"split {name!r} not found ({path}); generate it with "
                         f"`archlab generate --split {name} --out DIR` and pass that folder")
    return [_genotype_candidate(f"{name}/{i}", name, rec, width)
            for i, rec in enumerate(itertools.islice(read_split(path), limit))]


def from_genotype_file(path: str | os.PathLike, limit: int | None = None,
                       width: int | None = None) -> list[Candidate]:
    """The candidates of a JSON Lines genotype file (``archlab generate`` / search exports)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"genotype file {str(path)!r} does not exist")
    stem = path.name.split(".")[0]
    out = []
    try:
        for i, rec in enumerate(itertools.islice(read_split(path), limit)):
            if not isinstance(rec, dict) or "genotype" not in rec:
                raise UsageError(f"{path}: record {i + 1} has no 'genotype' field; expected lines "
                                 "like those `archlab generate` writes")
            try:
                out.append(_genotype_candidate(rec.get("candidate_id") or f"{stem}/{i}", "genotypes",
                                               rec, width))
            except (TypeError, KeyError, ValueError) as e:
                raise UsageError(f"{path}: record {i + 1} is not a valid genotype: {e}") from e
    except UsageError:
        raise
    except (ValueError, OSError, EOFError) as e:  # not JSON Lines, not text, a broken .gz
        raise UsageError(f"{path}: not a JSON Lines genotype file ({type(e).__name__}: {e})") from e
    return out


def from_train_stream(n: int, seed: int = 0, width: int = DEFAULT_WIDTH) -> Iterator[Candidate]:
    """The first ``n`` architectures of the deterministic DeepNets-1M train stream."""
    prefix = "train" if seed == 0 else f"train-s{seed}"
    for i, g in enumerate(itertools.islice(train_stream(seed), n)):
        yield Candidate(id=f"{prefix}/{i}", source="train", genotype=g, width=width)


def from_search(genotype: Genotype, width: int = DEFAULT_WIDTH) -> Candidate:
    """The candidate of a search trial's genotype at ``width`` (its id: genotype hash and width)."""
    return Candidate(id=f"search/{genotype.hash[:12]}-C{width}", source="search", genotype=genotype, width=width)


def from_models(specs: Iterable[str]) -> list[Candidate]:
    """Candidates for torchvision names and ``file.py:ClassName`` specs (checked on build)."""
    out = []
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        source = "file" if ":" in spec and spec.split(":", 1)[0].endswith(".py") else "torchvision"
        out.append(Candidate(id=spec, source=source, spec=spec))
    if not out:
        raise UsageError("no model given; pass e.g. resnet18,vgg11 or my_net.py:Net")
    return out


def parse_models(text: str) -> list[Candidate]:
    """Candidates from a comma-separated ``--models`` value."""
    return from_models(text.split(","))


def _genotype_candidate(cid: str, source: str, rec: dict, width: int | None) -> Candidate:
    meta = rec.get("meta") or {}
    g = Genotype.from_dict(rec["genotype"])
    return Candidate(id=cid, source=source, genotype=g,
                     width=int(width if width is not None else meta.get("C", DEFAULT_WIDTH)),
                     info={"hash": rec.get("hash", g.hash)})
