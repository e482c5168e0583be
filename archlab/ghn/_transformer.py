"""GHN-3 Graphormer layers over dense (padded) graph batches.

Layer 0 adds in/out-degree and distance-from-input embeddings to the node states and turns the
pair of shortest-path distances (forward ``i -> j`` and backward ``j -> i``) into one attention
bias per head; every layer adds that bias to its attention logits (as in GHN-3).

The bias equals GHN-3's ``proj_e(concat(embed(d_fw + 2), embed(d_bw + 2)))``, computed once per
distinct distance pair (a small table) and gathered, instead of on a ``[B, N, N, 2*hid]`` tensor.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_MASK_VALUE = -(2.0**15)


def _sinusoid(max_len: int, dim: int) -> torch.Tensor:
    position = torch.arange(max_len).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
    pe = torch.zeros(max_len, dim)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)
    pe[0] = 0
    return pe


class EdgeBias(nn.Module):
    """Distance pair ``(d_fw, d_bw)`` -> one attention bias per head."""

    def __init__(self, hid: int, heads: int, max_len: int = 257):
        super().__init__()
        self.edge_embed = nn.Embedding(max_len, hid)
        self.edge_embed.weight.data.copy_(_sinusoid(max_len, hid))
        self.proj_e = nn.Sequential(nn.Linear(2 * hid, hid), nn.ReLU(), nn.Linear(hid, heads))

    def forward(self, dist_fwd: torch.Tensor, dist_bwd: torch.Tensor) -> torch.Tensor:
        """``[B, N, N]`` int distances -> ``[B, heads, N, N]`` bias."""
        n_emb = self.edge_embed.num_embeddings
        d_fw = (dist_fwd + 2).clamp(max=n_emb - 1)
        d_bw = (dist_bwd + 2).clamp(max=n_emb - 1)
        k = int(max(d_fw.max(), d_bw.max())) + 1
        emb = self.edge_embed.weight[:k]  # [k, hid]
        w1, b1 = self.proj_e[0].weight, self.proj_e[0].bias
        hid = emb.shape[1]
        a = emb @ w1[:, :hid].T  # contribution of the forward distance
        b = emb @ w1[:, hid:].T  # contribution of the backward distance
        table = self.proj_e[2](torch.relu(a[:, None, :] + b[None, :, :] + b1))  # [k, k, heads]
        bias = table.reshape(k * k, -1)[(d_fw * k + d_bw).reshape(-1)]
        return bias.view(*dist_fwd.shape, -1).permute(0, 3, 1, 2)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.to_qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.to_out(out.transpose(1, 2).reshape(b, n, c))


class GraphormerLayer(nn.Module):
    """Pre-norm transformer layer with an additive attention bias."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4, eps: float = 1e-5):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, eps=eps)
        self.attn = SelfAttention(dim, heads)
        self.ln2 = nn.LayerNorm(dim, eps=eps)
        self.ff = FeedForward(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), bias)
        return x + self.ff(self.ln2(x))


class Graphormer(nn.Module):
    """``forward(x [B, N, C], dense graphs) -> [B, N, C]``."""

    def __init__(self, hid: int, layers: int, heads: int, mlp_ratio: int = 4,
                 max_degree: int = 100, max_input_dist: int = 1000):
        super().__init__()
        self.max_degree, self.max_input_dist = max_degree, max_input_dist
        self.centrality_embed_in = nn.Embedding(max_degree + 1, hid)
        self.centrality_embed_out = nn.Embedding(max_degree + 1, hid)
        self.input_dist_embed = nn.Embedding(max_input_dist + 1, hid)
        self.edge_bias = EdgeBias(hid, heads)
        self.layers = nn.ModuleList(GraphormerLayer(hid, heads, mlp_ratio) for _ in range(layers))

    def forward(self, x: torch.Tensor, dense) -> torch.Tensor:
        mask = dense.mask  # [B, N]
        x = x + self.centrality_embed_in(dense.in_degree.clamp(0, self.max_degree))
        x = x + self.centrality_embed_out(dense.out_degree.clamp(0, self.max_degree))
        x = x + self.input_dist_embed(dense.dist_fwd[:, 0, :].clamp(0, self.max_input_dist))
        x = x * mask.unsqueeze(-1).to(x.dtype)
        bias = self.edge_bias(dense.dist_fwd, dense.dist_bwd)
        pair = mask[:, :, None] & mask[:, None, :]
        bias = bias.masked_fill(~pair[:, None], _MASK_VALUE).to(x.dtype)
        for layer in self.layers:
            x = layer(x, bias)
        return x
