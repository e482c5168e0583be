"""One (method, seed) run of the search study, on a CPU-time budget, resumable from its folder.

Methods (all on the same Optuna space, :func:`archlab.search.suggest_genotype`):

- ``ghn-ft`` / ``random-ft``: a TPE search scored by that short-fine-tune proxy (median pruner),
  stopped when its trials have spent ``(1 - reserve) * budget`` CPU seconds; then the finalists,
  best proxy first, are trained fully (:class:`archlab.analysis.GroundTruthSpec`), each started
  while the run's CPU total is under the budget (the first always);
- ``random``: random genotypes (``RandomSampler``), each trained fully with the same recipe, started
  while the run's CPU total is under the budget; no proxy.

The result of a method is the best fully-trained top-1 (digits test split) among the architectures
it trained. A unit of work (a proxy trial or a full training) starts only while the budget is not
spent and always finishes, so every method overshoots by at most one unit; the CPU actually spent
is reported. The folder holds the Optuna journal, the ground-truth cache and ``finalists.json``
(the CPU cost of each finalist's training), so a rerun continues where a killed one stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archlab._io import atomic_write_text
from archlab.analysis import GroundTruthSpec, ground_truth
from archlab.engine import ShortFTResult, proxy_score
from archlab.search import (
    JournalHeartbeat,
    Objective,
    SearchSettings,
    finalists,
    make_pruner,
    open_storage,
    open_study,
    per_trial_sampler,
    run_worker,
    spent,
    trials_table,
)

METHODS = ("ghn-ft", "random-ft", "random")
UNLIMITED = 10**6  # trials: the budget, not a count, ends a run
GRACE_S = 60


@dataclass(frozen=True)
class RunConfig:
    """What a run is; a folder is named after it, so runs of other settings never mix."""

    budget_s: float = 240.0  # CPU seconds per (method, seed), finalists' training included
    reserve: float = 0.25  # fraction of the budget a proxy search leaves for its finalists
    ft_steps: int = 10
    epochs: int = 5
    batch_size: int = 64
    max_eval_images: int | None = None
    device: str = "cpu"
    ft_post: str = "noise"  # ghn-ft's post-processing of the predicted parameters

    def tag(self) -> str:
        ev = "" if self.max_eval_images is None else f"-v{self.max_eval_images}"
        # "-eval": scored in eval mode (dropout off); runs scored before that fix are not resumed
        return (f"b{self.budget_s:g}-r{self.reserve:g}-k{self.ft_steps}-e{self.epochs}"
                f"-bs{self.batch_size}{ev}-eval")

    def folder(self, method: str, seed: int) -> str:
        """A run's folder under the settings' cache: ``ghn-ft`` runs are kept apart per
        ``ft_post``; the other methods do not depend on it and are shared."""
        post = f"+{self.ft_post}" if method == "ghn-ft" and self.ft_post != "noise" else ""
        return f"{method}{post}-s{seed}"

    def spec(self) -> GroundTruthSpec:
        """The full-training recipe (seed 0 for every method and search seed: one truth)."""
        return GroundTruthSpec(dataset="digits", epochs=self.epochs, seed=0)


class TrainedObjective(Objective):
    """The ``random`` method's objective: the trial's architecture trained fully (no proxy)."""

    def __init__(self, data: Any, settings: SearchSettings, root: Path, spec: GroundTruthSpec) -> None:
        super().__init__(None, data, settings, journal=True)
        self.root, self.spec = root, spec

    def score(self, trial: Any, cand: Any) -> ShortFTResult:
        with JournalHeartbeat(trial, self.settings.heartbeat_interval):
            rec = ground_truth([cand], self.root, self.spec, device=self.settings.device,
                               progress=False)[cand.id]
        history = [(int(s), float(a)) for s, a in rec["history"]]
        return ShortFTResult(history=history, steps=history[-1][0])


def _study(method: str, seed: int, cfg: RunConfig, root: Path, fingerprint: str) -> tuple[Any, SearchSettings]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    info = open_storage(str(root / "study.journal"), grace_period=GRACE_S)
    proxy = "full-train" if method == "random" else method
    settings = SearchSettings(proxy=proxy, ft_steps=0 if method == "random" else cfg.ft_steps,
                              dataset="digits", seed=seed, eval_every=max(1, cfg.ft_steps // 5),
                              n_trials=UNLIMITED, device=cfg.device,
                              post=cfg.ft_post if method == "ghn-ft" else "noise")  # others share runs
    sampler = per_trial_sampler("random" if method == "random" else "tpe", seed)
    pruner = make_pruner("none" if method == "random" else "median", cfg.ft_steps)
    study = open_study(info, method, ("accuracy",), sampler, pruner,
                       fingerprint if method == "ghn-ft" else "none", settings.scored_as())
    return study, settings


def run_method(method: str, seed: int, cfg: RunConfig, root: Path, ghn: Any, data: Any,
               fingerprint: str) -> dict[str, Any]:
    """Run (or finish) one method for one seed in ``root``; returns its result (also ``result.json``)."""
    root.mkdir(parents=True, exist_ok=True)
    study, settings = _study(method, seed, cfg, root, fingerprint)
    if method == "random":
        objective = TrainedObjective(data, settings, root, cfg.spec())
        run_worker(study, objective, UNLIMITED, GRACE_S, journal=True, cpu_budget_s=cfg.budget_s)
        retrained: list[dict[str, Any]] = []
    else:
        objective = Objective(ghn if method == "ghn-ft" else None, data, settings, journal=True)
        run_worker(study, objective, UNLIMITED, GRACE_S, journal=True,
                   cpu_budget_s=cfg.budget_s * (1 - cfg.reserve))
        retrained = train_finalists(study, root, cfg)
    result = summarise(method, seed, cfg, study, retrained)
    atomic_write_text(json.dumps(result, indent=2) + "\n", root / "result.json")
    return result


def train_finalists(study: Any, root: Path, cfg: RunConfig) -> list[dict[str, Any]]:
    """Train the study's best architectures by proxy, in order, while the run's CPU total is
    under the budget (at least one); each training's cost is kept in ``finalists.json``."""
    path = root / "finalists.json"
    ledger: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    done = {r["id"] for r in ledger}
    cpu = spent(study)[0] + sum(r["cpu_s"] for r in ledger)
    for rank, (cand, proxy) in enumerate(finalists(study, UNLIMITED)):
        if cand.id in done:  # trained before this rerun, or the same genotype at another width
            continue
        if ledger and cpu >= cfg.budget_s:
            break
        cpu0, wall0 = time.process_time(), time.perf_counter()
        rec = ground_truth([cand], root, cfg.spec(), device=cfg.device, progress=False)[cand.id]
        cost = time.process_time() - cpu0
        cpu += cost
        ledger.append({"id": cand.id, "rank": rank, "proxy": proxy, "trained": rec["top1"],
                       "params": rec["n_params"], "cpu_s": cost, "wall_s": time.perf_counter() - wall0,
                       "cpu_at": cpu})
        done.add(cand.id)
        atomic_write_text(json.dumps(ledger, indent=2) + "\n", path)
    return ledger


def summarise(method: str, seed: int, cfg: RunConfig, study: Any, retrained: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's row of ``runs.csv``, its retrained trials and its best-so-far curve."""
    table = trials_table(study).sort_values("number")
    scored = table[table["state"].isin(("COMPLETE", "PRUNED"))]
    search_cpu, search_wall = spent(study)
    cpu = search_cpu + sum(r["cpu_s"] for r in retrained)
    wall = search_wall + sum(r["wall_s"] for r in retrained)
    if method == "random":
        done = table[table["state"] == "COMPLETE"]
        at = table["cpu_s"].fillna(0.0).cumsum()[done.index]
        curve = list(zip(at.tolist(), done["accuracy"].cummax().tolist()))
        trained = [{"id": r.candidate_id, "trained": r.accuracy, "params": r.params} for r in done.itertuples()]
    else:
        best = float("-inf")
        curve = []
        for r in retrained:
            best = max(best, r["trained"])
            curve.append((r["cpu_at"], best))
        trained = retrained
    top = max(trained, key=lambda r: r["trained"]) if trained else None
    complete = table[table["state"] == "COMPLETE"]
    by_proxy = complete.loc[complete["accuracy"].idxmax()] if method != "random" and len(complete) else None
    return {
        "method": method, "seed": seed, "budget_cpu_s": cfg.budget_s, "cpu_s": cpu, "wall_s": wall,
        "search_cpu_s": search_cpu, "candidates_scored": int(len(scored)),
        "pruned": int((scored["state"] == "PRUNED").sum()), "full_trainings": len(trained),
        "candidates_per_hour": len(scored) / (cpu / 3600) if cpu > 0 else float("nan"),
        "best_proxy_id": None if by_proxy is None else by_proxy["candidate_id"],
        "best_proxy_top1": None if by_proxy is None else float(by_proxy["accuracy"]),
        "best_trained_id": None if top is None else top["id"],
        "best_trained_top1": None if top is None else float(top["trained"]),
        "retrained": retrained, "curve": curve,
    }


def proxies_of_random_run(root: Path, seed: int, cfg: RunConfig, ghn: Any, data: Any) -> list[dict[str, Any]]:
    """Outside any budget: every proxy's score of the ``random`` run's fully-trained architectures
    (an unbiased sample of the space, unlike the finalists); cached in ``proxies[+POST].json``."""
    from archlab.engine import from_search
    from archlab.space import Genotype

    path = root / ("proxies.json" if cfg.ft_post == "noise" else f"proxies+{cfg.ft_post}.json")
    rows: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    have = {r["id"] for r in rows}
    study, _ = _study("random", seed, cfg, root, "none")
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        if t.values is None or a["candidate_id"] in have:
            continue
        cand = from_search(Genotype.from_dict(json.loads(a["genotype"])), int(a["width"]))
        row = {"id": cand.id, "seed": seed, "trained": float(t.values[0]), "params": a["params"]}
        for proxy in ("ghn", "ghn-ft", "random-ft"):
            steps = 0 if proxy == "ghn" else cfg.ft_steps
            row[proxy] = proxy_score(cand, proxy, ghn, data, steps, seed=seed, device=cfg.device,
                                     post=cfg.ft_post).final_top1
        rows.append(row)
        have.add(cand.id)
        atomic_write_text(json.dumps(rows, indent=2) + "\n", path)
    return rows
