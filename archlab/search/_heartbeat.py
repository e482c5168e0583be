"""Heartbeats for journal storages (Optuna has them only for RDB storages).

While a trial runs, :class:`JournalHeartbeat` writes the time (``time.time()``) into the trial's
``heartbeat`` user attribute every ``interval`` seconds. :func:`reap_stale` (run when a worker
starts and between its trials) marks FAIL every RUNNING trial whose last heartbeat (or start,
if it never beat) is older than the grace period, and enqueues its parameters again with
``user_attrs={"retry_of": <first trial of the chain>, "retries": k}``, at most ``max_retry``
times per chain. Of two workers reaping the same trial at once, the storage lets only one mark
it FAIL (the other's update is rejected), so a trial is retried once.

For RDB storages the same is Optuna's: ``optuna.storages.fail_stale_trials`` with
``RetryHeartbeatStaleTrialCallback`` (see :mod:`archlab.search._storage`).
"""

from __future__ import annotations

import threading
import time
import warnings
from types import TracebackType
from typing import Any

HEARTBEAT_ATTR = "heartbeat"


class JournalHeartbeat:
    """``with JournalHeartbeat(trial, interval): ...`` beats from a daemon thread."""

    def __init__(self, trial: Any, interval: float) -> None:
        self._trial = trial
        self._interval = float(interval)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial.number}", daemon=True)

    def _run(self) -> None:
        while True:
            try:
                self._trial.set_user_attr(HEARTBEAT_ATTR, time.time())
            except Exception:  # the trial was finished elsewhere (declared stale): stop beating
                return
            if self._stop.wait(self._interval):
                return

    def __enter__(self) -> JournalHeartbeat:
        self._trial.set_user_attr(HEARTBEAT_ATTR, time.time())  # before any work: never unbeaten
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()


def last_beat(trial: Any) -> float:
    """Unix time of ``trial``'s last heartbeat, else of its start."""
    beat = trial.user_attrs.get(HEARTBEAT_ATTR)
    if beat is not None:
        return float(beat)
    return trial.datetime_start.timestamp() if trial.datetime_start else time.time()


def reap_stale(study: Any, grace_period: float, max_retry: int = 3, journal: bool = True) -> list[int]:
    """Fail the stale RUNNING trials of ``study`` and enqueue their retries; returns the numbers
    of the trials this call failed. ``journal=False``: Optuna's own ``fail_stale_trials``."""
    import optuna
    from optuna.trial import TrialState

    if not journal:
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        return sorted(after - before)
    now = time.time()
    failed = []
    for t in study.get_trials(deepcopy=True, states=(TrialState.RUNNING,)):
        if now - last_beat(t) <= grace_period:
            continue
        try:
            study.tell(t.number, state=TrialState.FAIL)
        except (ValueError, RuntimeError):  # finished meanwhile, or another worker failed it first
            continue
        failed.append(t.number)
        retries = int(t.user_attrs.get("retries", 0)) + 1
        if retries > max_retry or not t.params:
            continue
        study.enqueue_trial(t.params, user_attrs={"retry_of": int(t.user_attrs.get("retry_of", t.number)),
                                                  "retries": retries})
    return failed
