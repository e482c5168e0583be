"""Studies and workers: open (or join) a study, and run one worker until it has N trials.

A worker runs one trial at a time until the study holds ``n_trials`` finished (COMPLETE or
PRUNED) trials, counting every worker's. It starts a trial only while finished + running trials
are fewer than N; otherwise it waits for the running ones (which finish, or go stale and are
retried). Samplers are seeded per trial from ``(seed, trial number)``, so workers started with
the same ``--seed`` do not propose the same architectures, and one worker is reproducible.

Every trial a worker runs records what it cost as user attributes: ``cpu_s`` (CPU seconds of the
worker process, all its threads, from ``time.process_time``; with ``OMP_NUM_THREADS=1`` on an idle
core it equals wall-clock) and ``wall_s``. With ``cpu_budget_s`` a worker also stops starting
trials once the study's recorded ``cpu_s`` (:func:`spent`, every worker's trials, any state) has
reached the budget; the trial in progress then finishes, so a study overshoots by at most one
trial per worker. A resumed study keeps counting from what its trials recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archlab._optional import require
from archlab.errors import UsageError
from archlab.search._heartbeat import reap_stale
from archlab.search._objective import SurplusTrial, directions
from archlab.search._storage import MAX_RETRY, StorageInfo, study_names

SAMPLERS = ("tpe", "random", "cmaes", "nsga2")
PRUNERS = ("median", "hyperband", "none")
FINGERPRINT_ATTR = "ghn_fingerprint"
CPU_ATTR, WALL_ATTR = "cpu_s", "wall_s"


def _make_sampler(name: str, seed: int) -> Any:
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        require("cmaes", "--sampler cmaes")
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.NSGAIISampler(seed=seed)


def check_sampler(name: str) -> None:
    if name not in SAMPLERS:
        raise UsageError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    if name == "cmaes":
        require("cmaes", "--sampler cmaes")


def per_trial_sampler(name: str, seed: int) -> Any:
    """A sampler that builds ``name`` afresh for each trial, seeded from ``(seed, trial number)``.

    Optuna's samplers keep their knowledge in the study, so a fresh one per trial loses nothing.
    """
    import optuna

    check_sampler(name)

    class PerTrialSeeded(optuna.samplers.BaseSampler):
        def __init__(self) -> None:
            self._inner = _make_sampler(name, seed)

        def before_trial(self, study: Any, trial: Any) -> None:
            self._inner = _make_sampler(name, (seed * 1_000_003 + trial.number) % 2**32)
            self._inner.before_trial(study, trial)

        def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
            return self._inner.infer_relative_search_space(study, trial)

        def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
            return self._inner.sample_relative(study, trial, search_space)

        def sample_independent(self, study: Any, trial: Any, param_name: str, dist: Any) -> Any:
            return self._inner.sample_independent(study, trial, param_name, dist)

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            self._inner.after_trial(study, trial, state, values)

        def __str__(self) -> str:
            return f"{type(self._inner).__name__}(per-trial seed from {seed})"

    return PerTrialSeeded()


def make_pruner(name: str, ft_steps: int, startup_trials: int = 5) -> Any:
    """``median`` (MedianPruner after ``startup_trials`` trials), ``hyperband`` or ``none``."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, ft_steps),
                                              reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UsageError(f"unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")


def open_study(info: StorageInfo, name: str, objectives: tuple[str, ...], sampler: Any, pruner: Any,
               fingerprint: str, scored_as: dict[str, Any]) -> Any:
    """Create study ``name`` or join it; refuse a study scored with another GHN or settings."""
    import optuna

    study = optuna.create_study(storage=info.storage, study_name=name, sampler=sampler, pruner=pruner,
                                directions=directions(objectives), load_if_exists=True)
    attrs = study.user_attrs
    old = attrs.get(FINGERPRINT_ATTR)
    if old is not None and old != fingerprint:
        raise UsageError(f"study {name!r} was scored with a GHN checkpoint of fingerprint {old} "
                         f"({attrs.get('ckpt', '?')}); --ckpt has fingerprint {fingerprint}. Use that "
                         "checkpoint, or a new --study name")
    for key, value in scored_as.items():
        if key in attrs and attrs[key] != value:
            raise UsageError(f"study {name!r} scores trials with {key}={attrs[key]!r}, not {value!r}; "
                             "use the same settings, or a new --study name")
    if old is None:
        study.set_user_attr(FINGERPRINT_ATTR, fingerprint)
    for key, value in scored_as.items():
        if key not in attrs:
            study.set_user_attr(key, value)
    return study


def load_existing(info: StorageInfo, name: str) -> Any:
    """The existing study ``name``; a missing one is a UsageError listing those there are."""
    import optuna

    names = study_names(info)
    if name not in names:
        there = f"; studies there: {', '.join(sorted(names))}" if names else "; it holds no study"
        raise UsageError(f"no study {name!r} in {info.display}{there}")
    return optuna.load_study(study_name=name, storage=info.storage)


@dataclass
class Counts:
    finished: int
    running: int
    waiting: int
    failed: int


def counts(study: Any) -> Counts:
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    return Counts(sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states),
                  states.count(TrialState.RUNNING), states.count(TrialState.WAITING),
                  states.count(TrialState.FAIL))


class Timed:
    """``Timed(objective)(trial)``: run ``objective`` and record its CPU and wall seconds on the
    trial (user attributes ``cpu_s`` and ``wall_s``), whether it returns, prunes or fails."""

    def __init__(self, objective: Callable) -> None:
        self.objective = objective

    def __call__(self, trial: Any) -> Any:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        try:
            return self.objective(trial)
        finally:
            trial.set_user_attr(CPU_ATTR, time.process_time() - cpu0)
            trial.set_user_attr(WALL_ATTR, time.perf_counter() - wall0)


def spent(study: Any) -> tuple[float, float]:
    """``(cpu_s, wall_s)``: the seconds recorded by every trial of ``study`` (any state)."""
    trials = study.get_trials(deepcopy=False)
    return (sum(float(t.user_attrs.get(CPU_ATTR, 0.0)) for t in trials),
            sum(float(t.user_attrs.get(WALL_ATTR, 0.0)) for t in trials))


def run_worker(study: Any, objective: Callable, n_trials: int, grace_period: float, journal: bool,
               on_trial: Callable[[Any, Any], None] | None = None, poll: float = 1.0,
               cpu_budget_s: float | None = None) -> int:
    """Run trials until ``study`` has ``n_trials`` finished ones, or (with ``cpu_budget_s``) until
    its trials have spent that many CPU seconds; returns how many this worker ran."""
    if cpu_budget_s is not None and cpu_budget_s <= 0:
        raise UsageError(f"cpu_budget_s must be > 0, got {cpu_budget_s}")
    ran = 0
    callbacks = [on_trial] if on_trial is not None else []
    timed = Timed(objective)
    while True:
        for number in reap_stale(study, grace_period, MAX_RETRY, journal=journal):
            print(f"trial {number}: no heartbeat for {grace_period:g}s, marked failed and retried", flush=True)
        c = counts(study)
        if c.finished >= n_trials or (cpu_budget_s is not None and spent(study)[0] >= cpu_budget_s):
            return ran
        if c.finished + c.running >= n_trials:  # the last slots are taken: wait for them
            time.sleep(poll)
            continue
        study.optimize(timed, n_trials=1, catch=(SurplusTrial,), callbacks=callbacks)
        ran += 1
