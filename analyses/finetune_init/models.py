"""CPU-sized model for the fine-tuning study: a ConvNeXt with one block per stage.

Used as ``analyses/finetune_init/models.py:ConvNeXtMini`` (archlab's ``file.py:ClassName`` spec).
"""

from __future__ import annotations

from torchvision.models.convnext import CNBlockConfig, ConvNeXt


class ConvNeXtMini(ConvNeXt):
    """ConvNeXt-Tiny widths (96-768) with depths (1, 1, 2, 1) instead of (3, 3, 9, 3)."""

    def __init__(self, num_classes: int = 10) -> None:
        cfg = [CNBlockConfig(96, 192, 1), CNBlockConfig(192, 384, 1),
               CNBlockConfig(384, 768, 2), CNBlockConfig(768, None, 1)]
        super().__init__(cfg, stochastic_depth_prob=0.0, num_classes=num_classes)
