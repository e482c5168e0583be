"""Embedding maps: the estimator, the joined table, PNG and self-contained HTML rendered in real
headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from archlab.analysis import EmbeddingMap, NotFittedError, map_frame, read_embeddings
from archlab.cli import main
from archlab.errors import UsageError


@pytest.fixture(scope="module")
def emb_files(tmp_path_factory):
    """Real embedding files: 40 train architectures (reference) and 2 torchvision models."""
    import torch

    from archlab.ghn import GHNConfig, build_ghn, save_ghn

    d = tmp_path_factory.mktemp("emb")
    torch.manual_seed(0)
    ckpt = save_ghn(build_ghn(GHNConfig.preset("ghn2", num_classes=10, image_size=16)), d / "ghn.pt")
    ref, new = d / "ref.parquet", d / "new.parquet"
    assert main(["embed", "--ckpt", str(ckpt), "--train", "40", "--out", str(ref), "--no-progress"]) == 0
    assert main(["embed", "--ckpt", str(ckpt), "--models", "resnet18,squeezenet1_0", "--out", str(new),
                 "--no-progress"]) == 0
    return ref, new


def test_pca_fallback_and_transform():
    rng = np.random.default_rng(0)
    small = EmbeddingMap().fit(rng.normal(size=(10, 6)))
    assert small.method_ == "pca" and small.reference_xy_.shape == (10, 2)
    assert small.transform(rng.normal(size=(4, 6))).shape == (4, 2)
    with pytest.raises(NotFittedError, match="EmbeddingMap instance is not fitted"):
        EmbeddingMap().transform(np.zeros((1, 6)))
    with pytest.raises(UsageError, match="at least 3"):
        EmbeddingMap().fit(np.zeros((2, 6)))


@pytest.mark.slow
def test_umap_places_new_points(emb_files):
    ref, new = (read_embeddings(p) for p in emb_files)
    labels = pd.DataFrame({"id": ["resnet18", "train/0"], "accuracy": [55.0, 20.0]})
    frame = map_frame(ref, [new], EmbeddingMap(random_state=0), labels)
    assert frame.attrs["method"] == "umap"
    assert len(frame) == 42 and frame["role"].value_counts().to_dict() == {"reference": 40, "new": 2}
    assert np.isfinite(frame[["x", "y"]].to_numpy()).all()
    assert frame.set_index("id").loc["resnet18", "accuracy"] == 55.0
    assert frame.set_index("id")["accuracy"].isna().sum() == 40


@pytest.mark.slow
def test_map_png_cli(emb_files, tmp_path, capsys):
    ref, new = emb_files
    out = tmp_path / "map.png"
    assert main(["map", "--emb", str(ref), "--emb", str(new), "--highlight", "resnet18", "--color", "params",
                 "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10000
    assert main(["map", "--emb", str(ref), "--highlight", "nosuch", "--out", str(out)]) == 2
    assert "nosuch" in capsys.readouterr().err
    assert main(["map", "--emb", str(ref), "--color", "colour", "--out", str(out)]) == 2
    assert main(["map", "--emb", str(ref), "--out", str(tmp_path / "map.gif")]) == 2
    assert "unknown image format" in capsys.readouterr().err


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_html_map_renders_points_and_hover_in_chromium(emb_files, tmp_path):
    browser = _chromium()
    if browser is None:
        msg = "Debian's chromium is not installed (scripts/test.sh installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    ref, new = emb_files
    html = tmp_path / "map.html"
    assert main(["map", "--emb", str(ref), "--emb", str(new), "--highlight", "resnet18", "--out", str(html)]) == 0
    page = html.read_text()
    assert not re.search(r'<script[^>]+src="https?://', page)  # plotly's JavaScript is inline
    assert "Plotly" in page and len(page) > 1_000_000
    # hover the first point of the 'torchvision' trace once plotly has drawn, then dump the DOM
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", """<script>
      window.addEventListener('load', function () {
        var gd = document.getElementById('archlab-map');
        var t = gd.data.findIndex(function (d) { return d.name === 'torchvision'; });
        Plotly.Fx.hover(gd, [{curveNumber: t, pointNumber: 0}]);
      });
    </script></body>"""))
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    points = re.findall(r'class="point"', dom)
    assert len(points) >= 42, f"{len(points)} points rendered"
    hover = re.search(r'class="hovertext".*?</g>', dom, re.S)
    assert hover is not None, "no hover label rendered"
    assert "resnet18" in hover.group(0) and "params" in hover.group(0)
