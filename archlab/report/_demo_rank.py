"""The demo's ranking and search stages, cached in the demo folder so a rerun continues.

- rank: held-out test candidates ranked by ``ghn``, ``ghn-loss``, ``ghn-ft`` and three zero-cost proxies
  against a small ground truth (each candidate trained for a few epochs), with the table and the
  scatter grid;
- search: two ``archlab search`` worker processes on one local journal file (a few dozen
  ``ghn-ft`` trials), and the optimisation-history plot.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from archlab._io import atomic_write_text
from archlab.analysis import GroundTruthSpec, correlations, ground_truth, markdown_table, rank
from archlab.engine import from_split
from archlab.engine._short_ft import proxy_data
from archlab.errors import ArchlabError
from archlab.plots import plot_rank_grid

RANK_METHODS = ("ghn", "ghn-loss", "ghn-ft", "random-ft", "synflow", "snip", "naswot")


def rank_stage(ghn, out: Path, n: int, ft_steps: int, epochs: int, device: Any, seed: int,
               progress: bool, echo=print) -> dict[str, Any]:
    """Rank the first ``n`` test candidates; ground truth: ``epochs`` of SGD each (cached)."""
    out.mkdir(parents=True, exist_ok=True)
    cands = from_split("test", limit=n)
    data = proxy_data("digits", seed=seed)
    table = rank(cands, RANK_METHODS, ghn, data, out, ft_steps=ft_steps, seed=seed, device=device,
                 progress=progress)
    truth = ground_truth(cands, out, GroundTruthSpec(epochs=epochs, seed=seed), device=device, progress=progress)
    table["ground_truth"] = [truth[c.id]["top1"] for c in cands]
    corr = correlations(table, RANK_METHODS)
    atomic_write_text(table.to_csv(index=False, float_format="%.6g"), out / "ranking.csv")
    atomic_write_text(corr.to_csv(index=False, float_format="%.4f"), out / "correlations.csv")
    md = markdown_table(corr)
    atomic_write_text(md, out / "correlations.md")
    grid = plot_rank_grid(table, corr, out / "scatter.png",
                          title=f"{n} test architectures: scores against {epochs}-epoch SGD accuracy")
    for line in md.splitlines():
        echo(f"      {line}")
    return {"ranking": table, "correlations": corr, "scatter": grid}


def search_stage(ckpt: Path, out: Path, trials: int, ft_steps: int, seed: int, echo=print) -> dict[str, Any]:
    """Two worker processes on one journal file until the study has ``trials`` finished trials."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "archlab", "search", "--ckpt", str(ckpt), "--study", "demo",
           "--trials", str(trials), "--proxy", "ghn-ft", "--ft-steps", str(ft_steps), "--seed", str(seed),
           "--max-eval-images", "200", "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two workers, one core each
    logs = [open(out / f"worker{i}.log", "w") for i in range(2)]  # noqa: SIM115 - closed below
    try:
        workers = [subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT) for f in logs]
        codes = [w.wait() for w in workers]
    finally:
        for f in logs:
            f.close()
    if any(codes):
        tail = (out / f"worker{codes.index(next(c for c in codes if c))}.log").read_text()[-1500:]
        raise ArchlabError(f"a search worker failed (exit codes {codes}); its log ends:\n{tail}")
    import pandas as pd

    table = pd.read_csv(out / "trials.csv")
    done = table[table["state"] == "COMPLETE"]
    best = done.sort_values("accuracy", ascending=False).iloc[0] if len(done) else None
    echo(f"      {len(table)} trials ({len(done)} complete) by 2 workers on {out / 'study.journal'}")
    if best is not None:
        echo(f"      best: {best['candidate_id']} at {best['accuracy']:.1f}% "
             f"after {ft_steps} fine-tuning steps -> {out / 'history.png'}")
    return {"trials": table, "history": out / "history.png"}
