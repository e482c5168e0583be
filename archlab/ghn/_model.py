"""The :class:`GHN` module: graphs in, predicted parameters (or embeddings) out."""

from __future__ import annotations

import weakref
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from archlab.graph import build_graph
from archlab.graph._batch import pad_dense
from archlab.graph._paths import shortest_path_lengths
from archlab.graph._types import ArchGraph

from ._config import GHNConfig
from ._decoder import ConvDecoder, Decoder1d
from ._encoder import NodeEncoder
from ._functional import use_batch_stats
from ._gnn import GatedGNN, NodeMLP, longest_path_levels
from ._plan import ParamPlan, fan_in_scale, plan_graph, source, squash, tile_into, tile_to
from ._transformer import Graphormer
from ._traversal import traversal

if TYPE_CHECKING:
    from archlab.graph._types import ArchGraph


@dataclass
class _Prepared:
    """Per-graph arrays a GHN needs, computed once per graph object."""

    node_type: np.ndarray  # [N]
    shape_idx: np.ndarray  # [N, 4]
    plans: list[ParamPlan] | None  # decoder plans: made on first prediction (embedding needs none)
    edges: np.ndarray | None = None  # ghn2: [3, E'] src, dst, hop distance (virtual edges incl. real)
    fw_level: np.ndarray | None = None
    bw_level: np.ndarray | None = None
    dist: np.ndarray | None = None  # ghn3: [N, N] hops i -> j
    in_degree: np.ndarray | None = None
    out_degree: np.ndarray | None = None


class GHN(nn.Module):
    """Graph HyperNetwork (GHN-2, GHN-3 or MLP baseline; see :class:`GHNConfig`).

    Build with :func:`build_ghn` or load with :func:`load_ghn`. ``forward(graphs)`` returns, per
    graph, ``{param name: tensor}`` for every parameter a node of the graph owns (shared weights
    once), differentiable w.r.t. the GHN. Running statistics of BatchNorm are not predicted:
    models filled by :meth:`predict` are switched to batch statistics (:func:`use_batch_stats`).
    """

    def __init__(self, config: GHNConfig):
        super().__init__()
        self.config = config
        c = config
        self.encoder = NodeEncoder(c.hid, c.num_classes, c.max_shape)
        if c.kind == "ghn2":
            self.gnn: nn.Module = GatedGNN(c.hid, c.virtual_edges, steps=c.layers)
        elif c.kind == "ghn3":
            self.gnn = Graphormer(c.hid, c.layers, c.heads, c.mlp_ratio, c.max_degree, c.max_input_dist)
        else:
            self.gnn = NodeMLP(c.hid)
        self.ln = nn.LayerNorm(c.hid) if c.layernorm else nn.Identity()
        self.decoder = ConvDecoder(c.hid, c.max_shape, c.num_classes, centred=c.kind == "ghn3")
        self.decoder_1d = Decoder1d(c.hid, max(c.max_shape[:2]), c.num_classes)
        if c.kind == "ghn3":
            self._init_ghn3()
        self._prepared: dict[int, tuple[weakref.ref, _Prepared]] = {}
        self._graphs: dict[int, tuple[weakref.ref, ArchGraph]] = {}

    def _init_ghn3(self) -> None:
        """GHN-3 initialisation: small last decoder layers, truncated-normal embeddings."""
        with torch.no_grad():
            for lin in (self.decoder_1d.decoder_1d[-2], self.decoder.conv[2],
                        self.decoder.class_layer_predictor[1]):
                lin.weight.div_(5.0)
                lin.bias.zero_()
            for name, m in self.named_modules():
                if isinstance(m, nn.Embedding) and not name.endswith("edge_embed"):
                    nn.init.trunc_normal_(m.weight, std=m.weight.shape[1] ** -0.5)

    # ------------------------------------------------------------------ properties
    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def device(self) -> torch.device:
        return self.decoder.fc.weight.device

    # ------------------------------------------------------------------ graph preparation
    def _prepare(self, g: ArchGraph) -> _Prepared:
        hit = self._prepared.get(id(g))
        if hit is not None and hit[0]() is g:
            return hit[1]
        c = self.config
        prep = _Prepared(
            node_type=g.node_type,
            shape_idx=self.encoder.shape_enc.shape_indices(
                [() if n.op == "input" and c.reference else n.shape for n in g.nodes]),
            plans=None,
        )
        n = g.num_nodes
        if c.kind == "ghn2":
            if c.virtual_edges:
                ei, dist = g.virtual_edges(c.ve_cutoff)
            else:
                ei, dist = g.edge_index, np.ones(g.num_edges, dtype=np.int64)
            prep.edges = np.concatenate([ei.reshape(2, -1), dist.reshape(1, -1)]).astype(np.int64)
            prep.fw_level = longest_path_levels(g.edge_index, n)
            rev = (n - 1 - g.edge_index)[::-1]
            prep.bw_level = longest_path_levels(np.ascontiguousarray(rev), n)[::-1].copy()
        elif c.kind == "ghn3":

            prep.dist = shortest_path_lengths(g.edge_index, n, cutoff=c.ve_cutoff)
            prep.in_degree = np.bincount(g.edge_index[1], minlength=n)
            prep.out_degree = np.bincount(g.edge_index[0], minlength=n)
        key = id(g)
        self._prepared[key] = (weakref.ref(g, lambda _r, k=key: self._prepared.pop(k, None)), prep)
        return prep

    def graph_of(self, model: nn.Module, input_size: Any = None) -> ArchGraph:
        """``build_graph(model)``, cached per model object (rebuilt if ``input_size`` is given);
        a model that cannot run at its native size is traced at the GHN's image size."""

        hit = self._graphs.get(id(model))
        if input_size is None and hit is not None and hit[0]() is model:
            return hit[1]
        ref = self.config.reference
        g = build_graph(model, input_size=input_size, fallback_size=self.image_size,
                        **({"mode": "ghn2" if ref == "ppuda" else "ghn3", "published": True} if ref else {}))
        key = id(model)
        self._graphs[key] = (weakref.ref(model, lambda _r, k=key: self._graphs.pop(k, None)), g)
        return g

    def __getstate__(self) -> dict:
        """Pickling / deepcopy drop the caches (they hold weak references)."""
        state = dict(self.__dict__)
        state["_prepared"], state["_graphs"] = {}, {}
        return state

    def clear_cache(self) -> None:
        """Forget cached graphs of models and per-graph preparations."""
        self._graphs.clear()
        self._prepared.clear()

    # ------------------------------------------------------------------ forward
    def node_states(self, graphs: list[ArchGraph]) -> tuple[torch.Tensor, list[_Prepared], np.ndarray]:
        """Final node states ``[sum N, hid]`` of the packed batch, the per-graph preparations and
        node offsets ``ptr [B+1]`` (graph ``b`` is rows ``ptr[b]:ptr[b+1]``)."""
        if not graphs:
            raise ValueError("need at least one graph")
        preps = [self._prepare(g) for g in graphs]
        dev = self.device
        sizes = np.array([len(p.node_type) for p in preps])
        ptr = np.concatenate([[0], np.cumsum(sizes)])
        node_type = torch.from_numpy(np.concatenate([p.node_type for p in preps])).to(dev)
        shape_idx = torch.from_numpy(np.concatenate([p.shape_idx for p in preps])).to(dev)
        x = self.encoder(node_type, shape_idx)
        kind = self.config.kind
        if kind == "ghn2":
            edges = np.concatenate([p.edges + np.array([[o], [o], [0]]) for p, o in zip(preps, ptr[:-1])], axis=1)
            fw_level = np.concatenate([p.fw_level for p in preps])
            bw_level = np.concatenate([p.bw_level for p in preps])
            parts = self.gnn.parts
            fw = traversal(fw_level, edges[0], edges[1], edges[2], parts)
            bw = traversal(bw_level, edges[1], edges[0], edges[2], parts)
            x = self.gnn(x, fw, bw)
        elif kind == "ghn3":
            dense = pad_dense([(p.node_type, p.dist, p.in_degree, p.out_degree) for p in preps],
                              graphs=[], device=dev)
            xd = x.new_zeros(len(preps), int(sizes.max()), x.shape[1])
            xd[dense.mask] = x
            x = self.gnn(xd, dense)[dense.mask]
        else:
            x = self.gnn(x)
        return self.ln(x), preps, ptr

    def forward(self, graphs: list[ArchGraph]) -> list[dict[str, torch.Tensor]]:
        """Predicted tensors for every owned parameter of every graph (keys in model order)."""
        graphs = _as_graph_list(graphs)
        out = []
        for g, items in zip(graphs, self._sources(graphs)):
            d = {p.name: self._full(p, w) for p, w in items}
            out.append({k: d[k] for k in g.param_shapes if k in d})
        return out

    def _class_token(self, plan: ParamPlan) -> int:
        """1 for a ViT position table ``(1, 1 + s*s, C)`` of a published GHN-3: as in ghn3, the
        predicted ``s x s`` grid fills rows 1.. and row 0 (the class token's position, which the
        GHN never saw) is not predicted: :meth:`predict` keeps the model's, :meth:`forward`
        gives zeros. 0 otherwise."""
        t = plan.shape
        return int(self.config.reference == "ghn3" and plan.kind == "pos" and len(t) == 3
                   and t[1] == plan.key[2] * plan.key[3] + 1)

    def _full(self, plan: ParamPlan, w: torch.Tensor) -> torch.Tensor:
        if not self._class_token(plan):
            return tile_to(w, plan.shape)
        t = plan.shape
        rest = tile_to(w, (t[0], t[1] - 1, *t[2:]))
        return torch.cat((rest.new_zeros((t[0], 1, *t[2:])), rest), 1)

    def _sources(self, graphs: list[ArchGraph]) -> list[list[tuple[ParamPlan, torch.Tensor]]]:
        """Per graph: ``(plan, normalised decoder output)`` pairs, each at most the target shape;
        :func:`tile_to` / :func:`tile_into` turn them into the parameters. Parameters of one shape
        class (``(kind, key)``) are decoded together, across graphs."""
        x, preps, ptr = self.node_states(graphs)
        groups: dict[tuple, list[tuple[int, ParamPlan]]] = defaultdict(list)
        for b, (g, prep) in enumerate(zip(graphs, preps)):
            if prep.plans is None:
                prep.plans = plan_graph(g, self.config.max_shape)
            for plan in prep.plans:
                groups[(plan.kind, plan.key)].append((b, plan))
        out: list[list[tuple[ParamPlan, torch.Tensor]]] = [[] for _ in graphs]
        norm = self.config.weight_norm
        for (kind, key), items in groups.items():
            idx = torch.tensor([int(ptr[b]) + p.node for b, p in items], device=x.device)
            xs = x.index_select(0, idx)
            if kind in ("conv", "pos", "cls_w"):
                shapes = [p.shape for _, p in items]
                if kind == "conv":
                    w = self.decoder(xs, *_channels_used(key[:2], shapes), *key[2:])
                elif kind == "cls_w":
                    w = self.decoder.classifier(xs, _channels_used((self.num_classes, *key), shapes)[1])
                else:
                    w = self.decoder(xs, *key)
                if norm:
                    scale = torch.tensor([fan_in_scale(p.shape) for _, p in items], device=w.device)
                    w = w * scale.to(w.dtype).view(-1, *[1] * (w.dim() - 1))
            elif kind == "cls_b":
                w = self.decoder_1d.class_bias(xs)
                w = squash(w, True) if norm else w
            else:
                raw = self.decoder_1d(xs)
                w = torch.stack((squash(raw[:, 0], False), squash(raw[:, 1], True)), 1) if norm else raw
            for j, (b, p) in enumerate(items):
                if kind == "vec":
                    wj = (w if len(p.shape) <= 1 else raw)[j, int(p.is_bias)]
                    if norm and len(p.shape) > 1:
                        wj = wj * fan_in_scale(p.shape)
                else:
                    wj = w[j]
                out[b].append((p, source(wj, p)))
        return out

    # ------------------------------------------------------------------ user API
    def predict_params(self, models: list[nn.Module], input_size: Any = None) -> list[dict[str, torch.Tensor]]:
        """Predicted parameters of ``models`` (one GHN pass over the packed batch)."""
        if isinstance(models, nn.Module):
            models = [models]
        return self.forward([self.graph_of(m, input_size) for m in models])

    @torch.no_grad()
    def predict(self, model_or_list, input_size: Any = None, batch_size: int | None = None):
        """Set every predicted parameter of the model(s) in place and switch BatchNorm layers to
        batch statistics (:func:`use_batch_stats`); returns the model(s).

        ``batch_size`` bounds how many models share one GHN pass (default: all).
        """
        single = isinstance(model_or_list, nn.Module)
        models = [model_or_list] if single else list(model_or_list)
        step = batch_size or max(1, len(models))
        for lo in range(0, len(models), step):
            chunk = models[lo:lo + step]
            graphs = [self.graph_of(m, input_size) for m in chunk]
            for model, items in zip(chunk, self._sources(graphs)):
                _check_prediction(self, model, items)
                params = dict(model.named_parameters())
                for plan, w in items:
                    if plan.name not in params:
                        raise KeyError(f"predicted parameter {plan.name!r} is not a parameter of "
                                       f"{type(model).__name__}")
                    dst = params[plan.name].data
                    tile_into(dst[:, 1:] if self._class_token(plan) else dst, w)
                use_batch_stats(model)
        return models[0] if single else models

    @torch.no_grad()
    def embed(self, models_or_graphs, batch_size: int = 4) -> np.ndarray:
        """``(N, hid)`` float32 array: mean of the final node states of each architecture."""
        items = [models_or_graphs] if isinstance(models_or_graphs, nn.Module) else list(models_or_graphs)
        graphs = [m if not isinstance(m, nn.Module) else self.graph_of(m) for m in items]
        graphs = _as_graph_list(graphs)
        out = []
        for lo in range(0, len(graphs), batch_size):
            x, _, ptr = self.node_states(graphs[lo:lo + batch_size])
            seg = torch.from_numpy(np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))).to(x.device)
            sums = x.new_zeros(len(ptr) - 1, x.shape[1]).index_add_(0, seg, x)
            out.append((sums / torch.from_numpy(np.diff(ptr)).to(x).unsqueeze(1)).cpu().numpy())
        emb = np.concatenate(out).astype(np.float32)
        if not np.isfinite(emb).all():
            _non_finite(self, "embeddings")
        return emb

    def extra_repr(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        return f"kind={self.config.kind}, hid={self.config.hid}, params={n:,}"


def _channels_used(key: tuple[int, int], shapes: list[tuple[int, ...]]) -> tuple[int, int]:
    """Output/input channels of a shape class (``key``: its channel sizes) that its targets
    (``shapes``) read: the class size, or less where every target is smaller (the rest would be
    sliced off). Decoding only these gives the same tensors without computing (and
    back-propagating) unused rows: with the GHN-2 classes a width-32 layer belongs to class 64,
    a quarter of whose rows it reads."""
    return min(key[0], max(s[0] for s in shapes)), min(key[1], max(s[1] for s in shapes))


def _check_prediction(ghn: GHN, model: nn.Module, items: list[tuple[ParamPlan, torch.Tensor]]) -> None:
    """Refuse predictions that are non-finite or for a classifier of another class count."""
    from archlab.errors import UsageError

    name = type(model).__name__
    for plan, _ in items:
        if plan.kind == "cls_w" and plan.shape[0] != ghn.num_classes:
            raise UsageError(f"{_ghn_name(ghn)} predicts {ghn.num_classes}-class classifiers but "
                             f"{name}'s classifier {plan.name} has {plan.shape[0]} outputs; build "
                             f"the model with {ghn.num_classes} classes or use a GHN trained for "
                             f"{plan.shape[0]}")
    if items and not bool(torch.stack([torch.isfinite(w).all() for _, w in items]).all()):
        _non_finite(ghn, f"parameters for {name}")


def _ghn_name(ghn: GHN) -> str:
    src = getattr(ghn, "source", None)
    return f"the {ghn.config.kind} GHN" + (f" {src}" if src else "")


def _non_finite(ghn: GHN, what: str):
    from ._checkpoint import CheckpointError

    raise CheckpointError(f"{_ghn_name(ghn)} predicted non-finite (NaN/inf) {what}: its weights "
                          "are corrupt or diverged; use another checkpoint")


def _as_graph_list(graphs) -> list:

    if isinstance(graphs, ArchGraph):
        return [graphs]
    graphs = list(graphs)
    for i, g in enumerate(graphs):
        if not isinstance(g, ArchGraph):
            raise TypeError(f"graphs[{i}] is a {type(g).__name__}, expected an ArchGraph")
    return graphs


def build_ghn(config: GHNConfig):
    """Build a freshly initialised :class:`~archlab.ghn.GHN` for ``config`` (the one build path)."""
    if not isinstance(config, GHNConfig):
        raise TypeError(f"build_ghn expects a GHNConfig, got {type(config).__name__}")
    return GHN(config)
