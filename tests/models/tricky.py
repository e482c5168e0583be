"""Custom models exercising the hard cases of graph building (loaded as file.py:ClassName too)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerScaleNet(nn.Module):
    """ConvNeXt-style block with a layer-scale vector and LayerNorm over channels-last."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 4, stride=4)
        self.dw = nn.Conv2d(16, 16, 7, padding=3, groups=16)
        self.norm = nn.LayerNorm(16)
        self.pw = nn.Linear(16, 16)
        self.gamma = nn.Parameter(torch.full((16,), 1e-6))
        self.head = nn.Linear(16, num_classes)
        self.input_size = 32

    def forward(self, x):
        x = self.stem(x)
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw(self.norm(y)) * self.gamma
        x = x + y.permute(0, 3, 1, 2)
        return self.head(x.mean((2, 3)))


class TokenNet(nn.Module):
    """ViT-style: class token, positional embedding, nn.MultiheadAttention, LayerNorm."""

    def __init__(self, num_classes: int = 10, dim: int = 32):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 8, stride=8)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, 17, dim))
        self.ln = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, 4, batch_first=True)
        self.head = nn.Linear(dim, num_classes)
        self.input_size = 32

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        h = self.ln(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return self.head(x[:, 0])


class NormZooNet(nn.Module):
    """GroupNorm, torchvision's LayerNorm2d, an Embedding table and a bare bias parameter."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        from torchvision.models.convnext import LayerNorm2d

        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.gn = nn.GroupNorm(2, 8)
        self.ln2d = LayerNorm2d(8)
        self.row_embed = nn.Embedding(32, 8)
        self.extra_bias = nn.Parameter(torch.zeros(8))
        self.fc = nn.Linear(8, num_classes)
        self.input_size = 32

    def forward(self, x):
        x = self.ln2d(self.gn(self.conv(x)))
        rows = self.row_embed(torch.arange(x.shape[2], device=x.device))  # [H, C]
        x = x + rows.t()[None, :, :, None]
        x = F.adaptive_avg_pool2d(x, 1).flatten(1) + self.extra_bias
        return self.fc(x)


class RelPosNet(nn.Module):
    """Swin-style relative-position bias table indexed into attention logits."""

    def __init__(self, num_classes: int = 10, dim: int = 16, window: int = 4):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 8, stride=8)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, 1))
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + window - 1
        self.register_buffer("index", rel[..., 0] * (2 * window - 1) + rel[..., 1])
        self.fc = nn.Linear(dim, num_classes)
        self.input_size = 32

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)  # [B, 16, C]
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        logits = q @ k.transpose(1, 2) + self.table[self.index.flatten()].view(16, 16)
        x = x + logits.softmax(-1) @ v
        return self.fc(x.mean(1))


class AuxHeadNet(nn.Module):
    """An auxiliary classifier used only in training mode (as in GoogLeNet/Inception)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.aux = nn.Linear(8, num_classes)
        self.fc = nn.Linear(8, num_classes)
        self.input_size = 32

    def forward(self, x):
        h = self.body(x).mean((2, 3))
        if self.training:
            return self.fc(h), self.aux(h)
        return self.fc(h)


class SharedWeightNet(nn.Module):
    """One conv applied twice (weight sharing)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.fc = nn.Linear(3, num_classes)
        self.input_size = 32

    def forward(self, x):
        x = self.conv(F.relu(self.conv(x)))
        return self.fc(x.mean((2, 3)))


class DataDependentNet(nn.Module):
    """Control flow on tensor values: cannot run on meta tensors, traced with real ones."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, num_classes)
        self.input_size = 16

    def forward(self, x):
        x = self.conv(x)
        if x.abs().sum().item() >= 0:  # always true, but needs a real value
            x = F.relu(x)
        return self.fc(x.mean((2, 3)))


class UnusedParamNet(nn.Module):
    """Has a parameter the forward pass never touches."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.fc = nn.Linear(3, num_classes)
        self.orphan = nn.Parameter(torch.zeros(5))
        self.input_size = 8

    def forward(self, x):
        return self.fc(x.mean((2, 3)))


class BrokenForwardNet(nn.Module):
    """Its forward raises."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.fc = nn.Linear(3, num_classes)

    def forward(self, x):
        raise RuntimeError("this model is broken on purpose")


class NeedsArgs(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(3, width)

    def forward(self, x):
        return self.fc(x.mean((2, 3)))
