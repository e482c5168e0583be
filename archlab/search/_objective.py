"""The search objective: a genotype from the trial, scored by a short-fine-tune proxy.

Objectives: ``accuracy`` (top-1 % of the proxy on the held-out split; maximised) and, for a
multi-objective search, ``params`` / ``flops`` (analytic, at the trial's width; minimised).
With a single objective the proxy reports ``trial.report(top1, step)`` at every evaluation and
stops when ``trial.should_prune()`` (the trial ends PRUNED).

An architecture already scored in the study (same genotype hash and width) is not trained again:
the trial returns the earlier trial's values (``cached_from``), or is pruned again if that one
was pruned. A trial that would exceed the study's trial budget, because another worker took the
last slot at the same moment, fails at once with ``surplus=True``.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from archlab.engine import from_search, proxy_score
from archlab.search._heartbeat import JournalHeartbeat
from archlab.search._space import suggest_genotype
from archlab.space import analytic_stats, input_kind

OBJECTIVES = ("accuracy", "params", "flops")
FINISHED = ("COMPLETE", "PRUNED")


class SurplusTrial(Exception):
    """This trial would go beyond the study's trial budget (another worker took the slot)."""


def directions(objectives: tuple[str, ...]) -> list[str]:
    """Optuna directions of ``objectives``: accuracy is maximised, params and FLOPs minimised."""
    return ["maximize" if o == "accuracy" else "minimize" for o in objectives]


@dataclass
class SearchSettings:
    """How every trial of a study is scored (stored in the study; must match to resume)."""

    proxy: str = "ghn-ft"
    ft_steps: int = 50
    objectives: tuple[str, ...] = ("accuracy",)
    dataset: str = "digits"
    seed: int = 0
    lr: float = 0.025
    eval_every: int | None = None
    n_trials: int = 20
    heartbeat_interval: float = 10.0
    device: str = "cpu"
    post: str = "noise"  # ghn-ft's post-processing of the predicted parameters

    def scored_as(self) -> dict[str, Any]:
        """What makes two trials' scores comparable."""
        return {"proxy": self.proxy, "ft_steps": self.ft_steps, "objectives": list(self.objectives),
                "dataset": self.dataset, "seed": self.seed, "lr": self.lr, "post": self.post}


def _frozen(study: Any, number: int) -> Any:
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.number == number:
            return t
    return None


def is_surplus(study: Any, trial: Any, n_trials: int) -> bool:
    """Whether ``n_trials`` other trials that count (finished or running) started before ``trial``."""
    from optuna.trial import TrialState

    me = _frozen(study, trial.number)
    if me is None or me.datetime_start is None:
        return False
    key = (me.datetime_start, me.number)
    ahead = sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                      TrialState.RUNNING))
                if t.number != me.number and t.datetime_start is not None
                and (t.datetime_start, t.number) < key)
    return ahead >= n_trials


def scored_before(study: Any, key: str, number: int) -> Any:
    """An earlier finished trial of ``study`` with cache key ``key`` (COMPLETE first), or None."""
    from optuna.trial import TrialState

    hits = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            if t.user_attrs.get("cache_key") == key and t.number != number]
    hits.sort(key=lambda t: (t.state != TrialState.COMPLETE, t.number))
    return hits[0] if hits else None


class Objective:
    """``Objective(ghn, data, settings, journal)(trial)``: what ``study.optimize`` runs."""

    def __init__(self, ghn: Any, data: Any, settings: SearchSettings, journal: bool) -> None:
        self.ghn = ghn
        self.data = data
        self.settings = settings
        self.journal = journal

    def __call__(self, trial: Any) -> float | tuple[float, ...]:
        import optuna

        s = self.settings
        if is_surplus(trial.study, trial, s.n_trials):
            trial.set_user_attr("surplus", True)
            raise SurplusTrial(f"trial {trial.number}: the study already has {s.n_trials} trials")
        self._mark_retry(trial)
        genotype, width, repairs = suggest_genotype(trial)
        cand = from_search(genotype, width)
        stats = analytic_stats(genotype, C=width, num_classes=self.data.num_classes,
                               input=input_kind(self.data.image_size), image_size=self.data.image_size)
        key = f"{genotype.hash}/C{width}"
        attrs = {"genotype": genotype.to_json(), "hash": genotype.hash, "candidate_id": cand.id,
                 "width": width, "cache_key": key, "params": int(stats["params"]),
                 "flops": int(stats["flops"]), "repairs": repairs,
                 "worker": f"{socket.gethostname()}:{os.getpid()}"}
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        hit = scored_before(trial.study, key, trial.number)
        if hit is not None:
            trial.set_user_attr("cached_from", hit.number)
            if hit.values is None:
                raise optuna.TrialPruned(f"architecture pruned before (trial {hit.number})")
            return hit.values[0] if len(hit.values) == 1 else tuple(hit.values)
        result = self.score(trial, cand)
        trial.set_user_attr("init_top1", result.init_top1)
        trial.set_user_attr("steps_run", result.steps)
        if result.stopped:
            raise optuna.TrialPruned(f"pruned at step {result.history[-1][0]} "
                                     f"(top-1 {result.final_top1:.2f}%)")
        values = tuple(float(result.final_top1) if o == "accuracy" else float(stats[o])
                       for o in s.objectives)
        return values[0] if len(values) == 1 else values

    def score(self, trial: Any, cand: Any) -> Any:
        """Score ``cand`` for ``trial``: a :class:`archlab.engine.ShortFTResult` (``history`` of
        ``(step, top1)``, ``steps``, ``stopped``). A subclass may score another way (e.g. full
        training) and keeps the genotype, attributes and per-architecture cache of ``__call__``."""
        s = self.settings
        single = len(s.objectives) == 1

        def on_eval(step: int, top1: float) -> bool:
            if not single:
                return False
            trial.report(top1, step)
            return trial.should_prune()

        beat = JournalHeartbeat(trial, s.heartbeat_interval) if self.journal else _Null()
        with beat:
            return proxy_score(cand, s.proxy, self.ghn, self.data, s.ft_steps, seed=s.seed,
                               on_eval=on_eval, lr=s.lr, device=s.device, eval_every=s.eval_every, post=s.post)

    @staticmethod
    def _mark_retry(trial: Any) -> None:
        """RDB retries carry Optuna's ``failed_trial`` system attribute; name it ``retry_of``."""
        me = _frozen(trial.study, trial.number)
        origin = me.system_attrs.get("failed_trial") if me is not None else None
        if origin is not None:
            trial.set_user_attr("retry_of", int(origin))
            trial.set_user_attr("retries", len(me.system_attrs.get("retry_history", [])))


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None
