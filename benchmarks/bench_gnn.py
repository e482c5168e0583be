"""GHN-2 message passing: forward + backward of both traversals on training meta-batches.

archlab runs each traversal as one autograd node computed in NumPy on the host, with a
hand-written backward pass (:mod:`archlab.ghn._traversal`). The baseline, timed in the same process on the same graphs and
weights, is the straightforward formulation: the same level-by-level updates written with
autograd-tracked ops (gather the sources' messages, weight, scatter-add, ``GRUCell``, write the
new states into the state and message buffers). Both give the same states and gradients (the
script checks); ``tests/test_ghn_model.py`` checks both against the node-by-node definition.

    python benchmarks/bench_gnn.py [--meta-batch 2] [--runs 7] [--batches 5]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from archlab.data import dataset_info
from archlab.engine._arch_stream import ArchSteps
from archlab.ghn import GHNConfig, build_ghn
from archlab.ghn._traversal import Traversal


@contextlib.contextmanager
def few_threads(n: int = 1) -> Iterator[None]:
    """Run the baseline's tiny per-level ops with ``n`` intra-op threads (restored afterwards):
    with several OpenMP threads their synchronisation costs more than the work."""
    prev = torch.get_num_threads()
    torch.set_num_threads(min(n, prev))
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def level_lists(trav: Traversal, parts: int) -> list[tuple[torch.Tensor, ...]]:
    """Per level of ``trav``, in original node numbering: (nodes, message rows read, their weights,
    target position within the level, message rows written)."""
    out = []
    for lv in range(trav.num_levels):
        a, b = trav.bounds[lv], trav.bounds[lv + 1]
        nodes = trav.perm[a:b]
        target, col = np.nonzero(trav.weights[lv])
        rows = trav.sources[lv][col]
        written = (nodes[:, None] * parts + np.arange(parts)).reshape(-1)
        read = trav.perm[rows // parts] * parts + rows % parts
        arrays = (nodes, read, trav.weights[lv][target, col][:, None], target, written)
        out.append(tuple(torch.from_numpy(np.ascontiguousarray(x)) for x in arrays))
    return out


def autograd_traversals(gnn, x: torch.Tensor, schedules: list[list[tuple[torch.Tensor, ...]]]) -> torch.Tensor:
    """The baseline: per level, autograd-tracked gather / weight / scatter-add, one ``GRUCell``
    call, the message MLPs, and in-place writes into the state and message buffers."""
    w1, b1, w2, b2 = gnn._fused_messages()
    c = gnn.hid
    h = x.clone()
    for levels in schedules:
        buf = x.new_zeros(x.shape[0] * gnn.parts, c)
        for nodes, rows, w, target, written in levels:
            m = x.new_zeros(len(nodes), c)
            if len(rows):
                m = m.index_add(0, target, buf.index_select(0, rows) * w)
            hn = gnn.gru(m, h.index_select(0, nodes))
            h.index_copy_(0, nodes, hn)
            msg = F.relu(F.linear(F.relu(F.linear(hn, w1, b1)), w2, b2))
            buf.index_copy_(0, written, msg.reshape(-1, c))
    return h


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meta-batch", type=int, default=2)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batches", type=int, default=5, help="meta-batches timed per run")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    info = dataset_info("digits")
    torch.manual_seed(0)
    ghn = build_ghn(GHNConfig.preset("ghn2", num_classes=info.num_classes, image_size=info.image_size))
    stream = iter(ArchSteps(seed=0, start=0, meta_batch=args.meta_batch, widths=(args.width,),
                            num_classes=info.num_classes, image_size=info.image_size, fc_dim=256))
    inputs = []
    for _ in range(args.batches):
        graphs = [g for *_, g in next(stream)]
        inputs.append(_gnn_inputs(ghn, graphs))
    nodes = statistics.mean(x.shape[0] for x, _ in inputs)
    levels = statistics.mean(t[0].num_levels + t[1].num_levels for _, t in inputs)

    def fast(x, travs):
        return ghn.gnn(x, *travs)

    lists = {id(t): level_lists(t, ghn.gnn.parts) for _, travs in inputs for t in travs}

    def baseline(x, travs):
        with few_threads():
            return autograd_traversals(ghn.gnn, x, [lists[id(t)] for t in travs])

    x, travs = inputs[0]
    check = [torch.autograd.grad(fn(x, travs).square().sum(), [x, *ghn.gnn.parameters()]) for fn in (fast, baseline)]
    err = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(*check))
    times: dict[str, list[float]] = {"archlab": [], "autograd baseline": []}
    for _ in range(args.runs):  # alternate, so both see the same machine state
        for name, fn in (("archlab", fast), ("autograd baseline", baseline)):
            t0 = time.perf_counter()
            for x, travs in inputs:
                fn(x, travs).square().sum().backward()
            times[name].append((time.perf_counter() - t0) / len(inputs))
    base = statistics.median(times["autograd baseline"])
    print(f"GHN-2 message passing, forward + backward, {args.meta_batch} DeepNets-1M training architectures "
          f"(width {args.width}) per meta-batch: {nodes:.0f} nodes, {levels:.0f} levels (both traversals) "
          f"on average; median of {args.runs} runs x {args.batches} meta-batches; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads. Largest gradient difference {err:.1e} (relative to the largest entry).\n")
    print(f"| {'implementation':<18} | {'ms / meta-batch':>15} | {'vs baseline':>11} |")
    print(f"|{'-' * 20}|{'-' * 17}|{'-' * 13}|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name:<18} | {med * 1000:>15.1f} | {med / base:>10.2f}x |")


def _gnn_inputs(ghn, graphs) -> tuple[torch.Tensor, tuple[Traversal, Traversal]]:
    """Node features (a leaf that requires grad) and both traversals, as the GHN builds them."""
    captured = {}
    hook = ghn.gnn.register_forward_pre_hook(lambda _m, args: captured.setdefault("args", args))
    with torch.no_grad():
        ghn.node_states(graphs)
    hook.remove()
    x, fw, bw = captured["args"]
    return x.detach().requires_grad_(), (fw, bw)


if __name__ == "__main__":
    main()
