"""One GHN-2 traversal (forward or backward over a packed batch of graphs) as a single autograd
node with a hand-written backward pass, computed on the host with NumPy.

A traversal updates nodes level by level (a level's nodes never feed each other)::

    m_v  = sum_{u -> v} sum_p w_p(u, v) * msg_p(h'_u)      # p: real edge (weight 1), virtual (1/hops)
    h'_v = GRU(m_v, h_v)

``msg = relu(W2 relu(W1 h + b1) + b2)`` is both message MLPs fused (``W2`` block-diagonal). A
level is a dozen products and element-wise ops on a few rows of 32 numbers: their cost is call
overhead, several times higher for torch ops (more again under autograd, and a kernel launch
each on a GPU) than for NumPy's. So the whole traversal runs in NumPy on the host, forward
without autograd and :meth:`_Traverse.backward` by hand, level by level in reverse; every
product that does not depend on the level order (parameter gradients, the GRU's hidden input) is
one whole-batch product. On a GPU only the inputs and results cross to the host (a few small
arrays per traversal).

Nodes are renumbered so that each level is a contiguous block of rows. Level ``l`` reads the
message rows ``sources[l]`` through a small dense matrix ``weights[l]`` (``[n_l, len(sources)]``,
entries 1 and 1/hops): the forward pass gathers and multiplies, the backward pass pushes the
transposed product back into those rows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import expit


@dataclass
class Traversal:
    """Schedule of one traversal direction over a packed batch (see module docstring).

    Rows are in *level order* (``perm[i]`` is the original node of row ``i``); level ``l`` is rows
    ``bounds[l]:bounds[l+1]``. Message row ``row * parts + part`` holds part ``part`` (real edge,
    virtual edge) of row ``row``'s message; ``parts`` is 2 with virtual edges, else 1.
    """

    perm: np.ndarray  # [N] original node of each level-ordered row
    inv_perm: np.ndarray  # [N] level-ordered row of each original node
    bounds: list[int]
    sources: list[np.ndarray]  # per level: the message rows its nodes read (distinct, ascending)
    weights: list[np.ndarray]  # per level: [n_l, len(sources[l])] edge weights
    feeds: list[bool]  # per level: whether a later level reads its messages
    parts: int

    @property
    def num_levels(self) -> int:
        return len(self.bounds) - 1


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
    num_levels = len(counts)
    level_of_row = np.repeat(np.arange(num_levels), counts)
    e_lv = level_of_row[e_dst]
    # the distinct (level, message row) pairs are the columns of the per-level matrices
    pairs, col = np.unique(e_lv * (n * parts) + e_src, return_inverse=True)
    src_rows = pairs % (n * parts)
    cols = np.bincount(pairs // (n * parts), minlength=num_levels)
    col_start = np.concatenate([[0], np.cumsum(cols)])
    w_start = np.concatenate([[0], np.cumsum(counts * cols)])
    entry = w_start[e_lv] + (e_dst - bounds[e_lv]) * cols[e_lv] + col - col_start[e_lv]
    flat = np.bincount(entry, weights=e_w, minlength=int(w_start[-1])).astype(np.float32)
    read = np.zeros(n, dtype=np.int64)
    read[src_rows // parts] = 1
    feeds = np.bincount(level_of_row, weights=read, minlength=num_levels) > 0
    sources = [src_rows[col_start[lv]:col_start[lv + 1]] for lv in range(num_levels)]
    weights = [flat[w_start[lv]:w_start[lv + 1]].reshape(counts[lv], cols[lv]) for lv in range(num_levels)]
    return Traversal(perm, row, bounds.tolist(), sources, weights, feeds.tolist(), parts)


def _host(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


#: ``m * n * k`` below which a product stays in NumPy. NumPy's BLAS (OpenBLAS: from 4 x 65,536)
#: runs larger products on its own threads, which keep spinning afterwards: on two cores a single
#: such product halved the speed of the torch convolutions that followed.
_NUMPY_MM_MAX = 1 << 16


def _mm(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` (into ``out`` if given): NumPy for per-level sizes, torch's thread pool above
    ``_NUMPY_MM_MAX`` (whole-batch products, large levels)."""
    if a.shape[0] * a.shape[1] * b.shape[1] < _NUMPY_MM_MAX:
        return np.matmul(a, b, out=out)
    r = (torch.from_numpy(a) @ torch.from_numpy(b)).numpy()
    if out is None:
        return r
    out[...] = r
    return out


@functools.cache
def _numpy_blas():
    """NumPy's OpenBLAS (not torch's thread pool): limited to one thread during a traversal.

    The per-level products are a few rows each, so extra BLAS threads only spin; on two cores
    they made the traversal 3x slower and slowed the torch work around it."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(internal_api="openblas")


class _Traverse(torch.autograd.Function):
    """``h' = traverse(h, w1, b1, w2, b2, w_ih, b_ih, w_hh, b_hh, trav)`` (see module docstring)."""

    @staticmethod
    def forward(ctx, h, w1, b1, w2, b2, w_ih, b_ih, w_hh, b_hh, trav: Traversal):
        params = [_host(t) for t in (w1, b1, w2, b2, w_ih, b_ih, w_hh, b_hh)]
        hp = _host(h)[trav.perm]
        with _numpy_blas().limit(limits=1):
            saved = _forward_levels(trav, hp, *params)
        ctx.trav, ctx.saved, ctx.params = trav, saved, params
        ctx.devices = [t.device for t in (h, w1, b1, w2, b2, w_ih, b_ih, w_hh, b_hh)]
        return torch.from_numpy(saved[4][trav.inv_perm]).to(h.device)

    @staticmethod
    def backward(ctx, grad_out):
        with _numpy_blas().limit(limits=1):
            grads = _backward_levels(ctx.trav, _host(grad_out), *ctx.saved, *ctx.params)
        return (*(torch.from_numpy(g).to(d) for g, d in zip(grads, ctx.devices)), None)


def _forward_levels(trav, hp, w1, b1, w2, b2, w_ih, b_ih, w_hh, b_hh):
    """Level-by-level GRU updates; returns what the backward pass needs."""
    n, c = hp.shape
    gh = _mm(hp, w_hh.T) + b_hh  # the GRU's hidden input: fixed during a traversal
    rz, cand, out = np.empty((n, 2 * c), hp.dtype), np.empty_like(hp), np.empty_like(hp)
    msg_in, hid = np.zeros_like(hp), np.zeros((n, w1.shape[0]), hp.dtype)
    msg = np.zeros((n, trav.parts * c), hp.dtype)
    msg_rows = msg.reshape(n * trav.parts, c)
    w_ih_t, w1_t, w2_t = (np.ascontiguousarray(w.T) for w in (w_ih, w1, w2))
    zero = hp.dtype.type(0)
    for lv in range(trav.num_levels):
        a, b = trav.bounds[lv], trav.bounds[lv + 1]
        rz_l = rz[a:b]
        if len(trav.sources[lv]):
            m = _mm(trav.weights[lv], msg_rows[trav.sources[lv]])
            msg_in[a:b] = m
            gi = _mm(m, w_ih_t)
            gi += b_ih
            np.add(gi[:, :2 * c], gh[a:b, :2 * c], out=rz_l)
            gi_n = gi[:, 2 * c:]
        else:
            np.add(gh[a:b, :2 * c], b_ih[:2 * c], out=rz_l)
            gi_n = b_ih[2 * c:]
        expit(rz_l, out=rz_l)
        cand_l, out_l = cand[a:b], out[a:b]
        np.multiply(rz_l[:, :c], gh[a:b, 2 * c:], out=cand_l)
        cand_l += gi_n
        np.tanh(cand_l, out=cand_l)
        np.subtract(hp[a:b], cand_l, out=out_l)  # (1 - z) * n + z * h
        out_l *= rz_l[:, c:]
        out_l += cand_l
        if trav.feeds[lv]:
            hid_l, msg_l = hid[a:b], msg[a:b]
            _mm(out_l, w1_t, out=hid_l)
            hid_l += b1
            np.maximum(hid_l, zero, out=hid_l)
            _mm(hid_l, w2_t, out=msg_l)
            msg_l += b2
            np.maximum(msg_l, zero, out=msg_l)
    return hp, gh, rz, cand, out, msg_in, hid, msg


def _backward_levels(trav, grad_out, hp, gh, rz, cand, out, msg_in, hid, msg,
                     w1, b1, w2, b2, w_ih, b_ih, w_hh, b_hh):
    """Gradients of ``(h, w1, b1, w2, b2, w_ih, b_ih, w_hh, b_hh)`` given ``d loss / d h'``."""
    n, c = hp.shape
    r, z = rz[:, :c], rz[:, c:]
    # per-node factors of the GRU's local derivatives (whole batch at once)
    k_z = (hp - cand) * z * (1 - z)  # d h' / d (z pre-activation)
    k_n = (1 - z) * (1 - cand * cand)  # d h' / d (n pre-activation)
    k_r = gh[:, 2 * c:] * r * (1 - r)  # d (n pre-activation) / d (r pre-activation)
    msg_on, hid_on = (msg > 0).astype(hp.dtype), (hid > 0).astype(hp.dtype)
    d_h = grad_out[trav.perm]  # grows by the message gradients, level by level
    d_gi = np.zeros((n, 3 * c), hp.dtype)
    d_msg, d_hid = np.zeros_like(msg), np.zeros_like(hid)
    d_msg_rows = d_msg.reshape(n * trav.parts, c)  # filled by the levels that read them
    for lv in reversed(range(trav.num_levels)):
        a, b = trav.bounds[lv], trav.bounds[lv + 1]
        d_h_l = d_h[a:b]
        if trav.feeds[lv]:
            d_msg_l, d_hid_l = d_msg[a:b], d_hid[a:b]
            d_msg_l *= msg_on[a:b]
            _mm(d_msg_l, w2, out=d_hid_l)
            d_hid_l *= hid_on[a:b]
            d_h_l += _mm(d_hid_l, w1)
        g_n = np.multiply(d_h_l, k_n[a:b], out=d_gi[a:b, 2 * c:])
        np.multiply(d_h_l, k_z[a:b], out=d_gi[a:b, c:2 * c])
        np.multiply(g_n, k_r[a:b], out=d_gi[a:b, :c])
        src = trav.sources[lv]
        if len(src):
            d_msg_rows[src] += _mm(trav.weights[lv].T, _mm(d_gi[a:b], w_ih))
    d_gh = d_gi.copy()
    d_gh[:, 2 * c:] *= r
    d_hp = d_h * z + _mm(d_gh, w_hh)
    return (
        d_hp[trav.inv_perm],
        _mm(d_hid.T, out), d_hid.sum(0), _mm(d_msg.T, hid), d_msg.sum(0),
        _mm(d_gi.T, msg_in), d_gi.sum(0), _mm(d_gh.T, hp), d_gh.sum(0),
    )


def traverse(h: torch.Tensor, params: tuple[torch.Tensor, ...], trav: Traversal) -> torch.Tensor:
    """One traversal; ``params = (w1, b1, w2, b2, w_ih, b_ih, w_hh, b_hh)`` (fused message MLP and
    GRU weights in :class:`torch.nn.GRUCell`'s layout)."""
    return _Traverse.apply(h, *params, trav)
