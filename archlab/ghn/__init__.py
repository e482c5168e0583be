"""Graph HyperNetworks: GHN-2 (gated GNN), GHN-3 (Graphormer) and an MLP baseline.

::

    ghn = build_ghn(GHNConfig.preset("ghn3-t", num_classes=10, image_size=32))
    params = ghn([build_graph(model)])[0]          # {name: tensor}, differentiable
    logits = functional_logits(model, params, x)   # train the GHN through the task loss
    ghn.predict(model)                             # fill the model in place (batch-stat BN)
    save_ghn(ghn, "ghn.pt"); ghn = load_ghn("ghn.pt")
    ghn = load_ghn("ghn3xlm16.pt")   # published GHN-2 / MLP (ppuda) and GHN-3 (ghn3) files too
"""

from ._checkpoint import FORMAT, CheckpointError, fingerprint, load_ghn, save_ghn
from ._config import PRESETS, GHNConfig
from ._download import PUBLISHED_URLS, download_published
from ._functional import functional_logits, predicted_parameters, use_batch_stats
from ._model import GHN, build_ghn
from ._published import save_published

__all__ = [
    "GHNConfig", "GHN", "build_ghn", "save_ghn", "load_ghn", "CheckpointError",
    "functional_logits", "predicted_parameters", "use_batch_stats", "PRESETS", "FORMAT", "fingerprint",
    "download_published", "save_published", "PUBLISHED_URLS",
]
