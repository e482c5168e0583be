"""What the search tests share: a fixed random-init MLP GHN checkpoint, the fast CLI settings,
and opening a study the way any Optuna user would (no archlab code in between)."""

from __future__ import annotations

from pathlib import Path

import optuna

from archlab.ghn import GHNConfig, build_ghn, save_ghn
from archlab.search._storage import driver_url

FAST = ["--ft-steps", "2", "--batch-size", "16", "--max-eval-images", "32", "--device", "cpu"]


def search_ghn(tmp_path_factory) -> str:
    """A random-init MLP GHN for 10-class 16-px digits, the same in every run; a test module
    makes it its ``ckpt`` fixture with ``ckpt = pytest.fixture(scope="module", name="ckpt")(search_ghn)``."""
    import torch

    path = tmp_path_factory.mktemp("ghn") / "mlp.pt"
    torch.manual_seed(0)  # the same GHN in every run: the pruning test relies on its scores
    save_ghn(build_ghn(GHNConfig.preset("mlp", num_classes=10, image_size=16)), path)
    return str(path)


def search_args(ckpt: str, out: Path, study: str, trials: int, *extra: str) -> list[str]:
    """``archlab search`` arguments for ``trials`` trials of ``study`` into ``out``, fast settings."""
    return ["search", "--ckpt", ckpt, "--study", study, "--trials", str(trials), "--out", str(out),
            *FAST, *extra]


def load_study(name: str, storage: str | Path) -> optuna.Study:
    """Open study ``name`` from the test process: a journal file path or a database URL."""
    journal = "://" not in str(storage)
    return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(storage))) if journal else driver_url(str(storage)))
