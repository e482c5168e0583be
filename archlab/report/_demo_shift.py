"""The demo's distribution-shift stage: a reference embedding set, shift scores of well-known
models and a custom one from a file, and the PNG and HTML maps. Every output is cached in the
demo folder, so a rerun continues where it stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archlab._io import atomic_write_text
from archlab.analysis import (
    EmbeddingMap,
    ShiftScore,
    embed_to_file,
    map_frame,
    read_embeddings,
    shift_table,
)
from archlab.engine import from_models, from_train_stream
from archlab.plots import plot_map_html, plot_map_png, plot_shift

ZOO = ("resnet18", "resnet50", "convnext_tiny", "vit_b_16", "swin_t")
CUSTOM = '''"""A small custom network, as a user would write one (archlab demo)."""
import torch.nn as nn


class MyNet(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.head(self.features(x))
'''


def _cached_embeddings(path: Path, ghn, candidates, total: int, progress: bool):
    if not path.exists():
        embed_to_file(ghn, candidates, path, total=total, progress=progress)
    return read_embeddings(path)


def shift_stage(ghn, out: Path, ref_size: int, progress: bool, echo=print) -> dict[str, Any]:
    """Embed ``ref_size`` train architectures, score the zoo and ``my_net.py:MyNet``, draw maps."""
    custom = out / "my_net.py"
    if not custom.exists():
        atomic_write_text(CUSTOM, custom)
    ref = _cached_embeddings(out / f"ref{ref_size}.parquet", ghn, from_train_stream(ref_size), ref_size, progress)
    specs = [*ZOO, f"{custom}:MyNet"]
    zoo = _cached_embeddings(out / "zoo.parquet", ghn, from_models(specs), len(specs), progress)
    est = ShiftScore(k=5, readout="mean+sum").fit(ref)  # as `archlab shift`: sees deeper/denser nets
    table = shift_table(est, zoo)
    (out / "shift").mkdir(exist_ok=True)
    atomic_write_text(table.to_csv(index=False, float_format="%.4g"), out / "shift" / "shift.csv")
    plot_shift(table, out / "shift" / "shift.png", title=f"shift against {len(ref)} DeepNets-1M train architectures")
    for r in table.to_dict("records"):
        echo(f"      {Path(r['id']).name if r['id'].endswith(':MyNet') else r['id']:<16} percentile "
             f"{r['percentile']:5.1f}  {r['verdict']}")
    frame = map_frame(ref, [zoo], EmbeddingMap(random_state=0), labels=table[["id", "percentile", "verdict"]])
    highlight = list(zoo["id"])
    png = plot_map_png(frame, out / "map.png", highlight=highlight)
    html = plot_map_html(frame, out / "map.html", highlight=highlight)
    return {"shift": table, "shift_csv": out / "shift" / "shift.csv", "map_png": png, "map_html": html}
