"""One GHN-2 traversal (forward or backward over a packed batch of graphs) as a single autograd
node with a hand-written backward pass.

A traversal updates nodes level by level (a level's nodes never feed each other)::

    m_v  = sum_{u -> v} sum_p w_p(u, v) * msg_p(h'_u)      # p: real edge (weight 1), virtual (1/hops)
    h'_v = GRU(m_v, h_v)

``msg = relu(W2 relu(W1 h + b1) + b2)`` is both message MLPs fused (``W2`` block-diagonal). A
level costs a dozen tiny tensor ops; under autograd each of them would add a graph node and a
backward call of several times its cost, which made the traversals most of a CPU training step.
Here the forward pass runs without autograd into preallocated level-sorted buffers, and
:meth:`_Traverse.backward` walks the levels in reverse with about ten ops per level, leaving every
matrix product that does not depend on the level order (parameter gradients, the GRU's hidden
input) to a few whole-batch products at the end.

Nodes are renumbered so that each level is a contiguous block of rows: every per-level read and
write is a slice. Messages are summed with ``embedding_bag`` (weighted sum of gathered rows, no
``[edges, C]`` intermediate); the backward pass uses the same op over the transposed edges.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class Traversal:
    """Index tensors of one traversal direction over a packed batch (see module docstring).

    Rows are in *level order* (``perm[i]`` is the original node of row ``i``); level ``l`` is rows
    ``bounds[l]:bounds[l+1]``. ``parts`` message rows per node (2 with virtual edges).
    """

    perm: torch.Tensor  # [N] original node of each level-ordered row
    inv_perm: torch.Tensor  # [N] level-ordered row of each original node
    in_idx: torch.Tensor  # message rows (row * parts + part) summed into each target, by target
    in_w: torch.Tensor
    in_off: torch.Tensor  # per level: n_l + 1 offsets into that level's in_idx slice
    out_idx: torch.Tensor  # target rows each message row feeds, by message row
    out_w: torch.Tensor
    out_off: torch.Tensor  # per level: parts * n_l + 1 offsets into that level's out_idx slice
    bounds: list[int]
    in_bounds: list[int]  # level l's entries: in_idx[in_bounds[l]:in_bounds[l+1]]
    out_bounds: list[int]
    parts: int

    @property
    def num_levels(self) -> int:
        return len(self.bounds) - 1

    def to(self, device: torch.device | str) -> Traversal:
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for k, v in moved.items():
            if isinstance(v, torch.Tensor):
                moved[k] = v.to(device)
        return Traversal(**moved)


def traversal(level: np.ndarray, src: np.ndarray, dst: np.ndarray, dist: np.ndarray, parts: int) -> Traversal:
    """The :class:`Traversal` updating nodes by ``level`` with messages ``src -> dst`` at hop
    distance ``dist`` (``level[src] < level[dst]``). ``parts=2``: real edges (``dist == 1``, weight
    1) and virtual edges (every pair, weight ``1/dist``) have separate message MLPs; ``parts=1``:
    one MLP, weight 1 per edge."""
    n = len(level)
    perm = np.argsort(level, kind="stable")
    row = np.empty(n, dtype=np.int64)
    row[perm] = np.arange(n)
    counts = np.bincount(level, minlength=1)
    bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if parts == 2:
        real = dist == 1
        e_src = np.concatenate([row[src[real]] * 2, row[src] * 2 + 1])
        e_dst = np.concatenate([row[dst[real]], row[dst]])
        e_w = np.concatenate([np.ones(int(real.sum())), 1.0 / np.maximum(dist, 1)])
    elif parts == 1:
        e_src, e_dst, e_w = row[src], row[dst], np.ones(len(src))
    else:
        raise ValueError(f"parts must be 1 or 2, got {parts}")
    e_w = e_w.astype(np.float32)
    in_idx, in_w, in_off, in_bounds = _bags(e_dst, e_src, e_w, bounds, 1)
    out_idx, out_w, out_off, out_bounds = _bags(e_src, e_dst, e_w, bounds, parts)
    t = torch.from_numpy
    return Traversal(t(perm), t(row), t(in_idx), t(in_w), t(in_off), t(out_idx), t(out_w), t(out_off),
                     bounds.tolist(), in_bounds, out_bounds, parts)


def _bags(key: np.ndarray, value: np.ndarray, weight: np.ndarray, bounds: np.ndarray, per_row: int):
    """Entries grouped by ``key`` (a bag per key ``0 .. per_row * N - 1``), split by level.

    Returns the ``value``/``weight`` arrays sorted by key, the concatenated per-level offsets
    (``include_last_offset`` layout, relative to the level's first entry) and the entry bounds
    of each level."""
    order = np.argsort(key, kind="stable")
    key, value, weight = key[order], value[order], weight[order]
    starts = np.searchsorted(key, np.arange(bounds[-1] * per_row + 1))
    row_bounds = bounds * per_row
    entry_bounds = starts[row_bounds]
    # level l contributes starts[row_bounds[l] : row_bounds[l+1] + 1] - starts[row_bounds[l]]
    lvl = np.repeat(np.arange(len(bounds) - 1), np.diff(row_bounds) + 1)
    rows = np.arange(len(lvl)) - lvl  # concatenated position k of level l reads row k - l
    off = starts[rows] - starts[row_bounds[lvl]]
    return value.astype(np.int64), weight, off.astype(np.int64), entry_bounds.tolist()


def _level_offsets(trav: Traversal, level: int, per_row: int) -> tuple[int, int]:
    """Start/end of level ``level``'s slice of a concatenated per-level offset array."""
    a, b = trav.bounds[level], trav.bounds[level + 1]
    return a * per_row + level, b * per_row + level + 1


@contextlib.contextmanager
def few_threads(device: torch.device, n: int = 1) -> Iterator[None]:
    """Run many tiny CPU ops with ``n`` intra-op threads (restored afterwards).

    Per-level ops act on a handful of rows; with several OpenMP threads their synchronisation
    costs far more than the work (milliseconds per op on a busy machine).
    """
    prev = torch.get_num_threads()
    if device.type != "cpu" or prev <= n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _bag_sum(rows: torch.Tensor, idx: torch.Tensor, w: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
    return F.embedding_bag(idx, rows, off, mode="sum", per_sample_weights=w, include_last_offset=True)


class _Traverse(torch.autograd.Function):
    """``h' = traverse(h, w1, b1, w2, b2, w_ih, b_ih, w_hh, b_hh, trav)`` (see module docstring)."""

    @staticmethod
    def forward(ctx, h, w1, b1, w2, b2, w_ih, b_ih, w_hh, b_hh, trav: Traversal):
        n, c = h.shape
        p = trav.parts
        hp = h.index_select(0, trav.perm)
        gh = torch.addmm(b_hh, hp, w_hh.t())  # the GRU's hidden input: fixed during a traversal
        rz, cand, out = hp.new_empty(n, 2 * c), hp.new_empty(n, c), hp.new_empty(n, c)
        msg_in, hid, msg = hp.new_zeros(n, c), hp.new_zeros(n, w1.shape[0]), hp.new_zeros(n, p * c)
        msg_rows = msg.view(n * p, c)
        for lv in range(trav.num_levels):
            a, b = trav.bounds[lv], trav.bounds[lv + 1]
            ea, eb = trav.in_bounds[lv], trav.in_bounds[lv + 1]
            if eb > ea:
                oa, ob = _level_offsets(trav, lv, 1)
                m = _bag_sum(msg_rows, trav.in_idx[ea:eb], trav.in_w[ea:eb], trav.in_off[oa:ob])
                msg_in[a:b] = m
                gi = torch.addmm(b_ih, m, w_ih.t())
                torch.add(gi[:, :2 * c], gh[a:b, :2 * c], out=rz[a:b])
                gi_n = gi[:, 2 * c:]
            else:
                torch.add(gh[a:b, :2 * c], b_ih[:2 * c], out=rz[a:b])
                gi_n = b_ih[2 * c:]
            rz[a:b].sigmoid_()
            r, z = rz[a:b, :c], rz[a:b, c:]
            torch.addcmul(gi_n, r, gh[a:b, 2 * c:], out=cand[a:b]).tanh_()
            torch.addcmul(cand[a:b], z, hp[a:b] - cand[a:b], out=out[a:b])  # (1 - z) * n + z * h
            if trav.out_bounds[lv + 1] > trav.out_bounds[lv]:
                torch.addmm(b1, out[a:b], w1.t(), out=hid[a:b]).relu_()
                torch.addmm(b2, hid[a:b], w2.t(), out=msg[a:b]).relu_()
        ctx.trav = trav
        ctx.save_for_backward(hp, gh, rz, cand, out, msg_in, hid, msg, w1, w2, w_ih, w_hh)
        return out.index_select(0, trav.inv_perm)

    @staticmethod
    def backward(ctx, grad_out):
        trav: Traversal = ctx.trav
        hp, gh, rz, cand, out, msg_in, hid, msg, w1, w2, w_ih, w_hh = ctx.saved_tensors
        with few_threads(grad_out.device):
            return _traverse_backward(trav, grad_out, hp, gh, rz, cand, out, msg_in, hid, msg,
                                      w1, w2, w_ih, w_hh) + (None,)


def _traverse_backward(trav, grad_out, hp, gh, rz, cand, out, msg_in, hid, msg, w1, w2, w_ih, w_hh):
    n, c = hp.shape
    p = trav.parts
    r, z = rz[:, :c], rz[:, c:]
    # per-node factors of the GRU's local derivatives (whole batch at once)
    k_z = (hp - cand) * z * (1 - z)  # d h' / d (z pre-activation)
    k_n = (1 - z) * (1 - cand * cand)  # d h' / d (n pre-activation)
    k_r = gh[:, 2 * c:] * r * (1 - r)  # d (n pre-activation) / d (r pre-activation)
    d_h = grad_out.index_select(0, trav.perm)  # grows by the message gradients, level by level
    d_gi = hp.new_zeros(n, 3 * c)
    d_m = hp.new_zeros(n, c)
    d_msg, d_hid = hp.new_zeros(n, p * c), hp.new_zeros(n, hid.shape[1])
    msg_on, hid_on = msg > 0, hid > 0
    for lv in reversed(range(trav.num_levels)):
        a, b = trav.bounds[lv], trav.bounds[lv + 1]
        ea, eb = trav.out_bounds[lv], trav.out_bounds[lv + 1]
        if eb > ea:
            oa, ob = _level_offsets(trav, lv, p)
            g = _bag_sum(d_m, trav.out_idx[ea:eb], trav.out_w[ea:eb], trav.out_off[oa:ob])
            torch.mul(g.view(b - a, p * c), msg_on[a:b], out=d_msg[a:b])
            torch.mul(d_msg[a:b] @ w2, hid_on[a:b], out=d_hid[a:b])
            d_h[a:b].addmm_(d_hid[a:b], w1)
        g_n = torch.mul(d_h[a:b], k_n[a:b], out=d_gi[a:b, 2 * c:])
        torch.mul(d_h[a:b], k_z[a:b], out=d_gi[a:b, c:2 * c])
        torch.mul(g_n, k_r[a:b], out=d_gi[a:b, :c])
        if trav.in_bounds[lv + 1] > trav.in_bounds[lv]:
            torch.mm(d_gi[a:b], w_ih, out=d_m[a:b])
    d_gh = d_gi.clone()
    d_gh[:, 2 * c:] *= r
    d_hp = torch.addmm(d_h * z, d_gh, w_hh)
    return (
        d_hp.index_select(0, trav.inv_perm),
        d_hid.t() @ out, d_hid.sum(0), d_msg.t() @ hid, d_msg.sum(0),
        d_gi.t() @ msg_in, d_gi.sum(0), d_gh.t() @ hp, d_gh.sum(0),
    )


def traverse(h: torch.Tensor, params: tuple[torch.Tensor, ...], trav: Traversal) -> torch.Tensor:
    """One traversal; ``params = (w1, b1, w2, b2, w_ih, b_ih, w_hh, b_hh)`` (fused message MLP and
    GRU weights in :class:`torch.nn.GRUCell`'s layout)."""
    return _Traverse.apply(h, *params, trav)
