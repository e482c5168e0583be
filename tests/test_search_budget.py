"""Search budgets in CPU seconds: a worker stops starting trials once the study's trials have
spent the budget (all workers together, counted on after a rerun), through the Python API and
``archlab search --cpu-budget``. Real Optuna journal storages, the embedded digits data."""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.trial import TrialState

from archlab.cli import main
from tests._search_helpers import FAST, load_study, search_ghn

ckpt = pytest.fixture(scope="module", name="ckpt")(search_ghn)


def _burn(cpu_s: float) -> None:
    end = time.process_time() + cpu_s
    while time.process_time() < end:
        pass


def test_cpu_budget_stops_the_worker_and_a_resumed_study_keeps_counting(tmp_path):
    from archlab.search import open_storage, per_trial_sampler, run_worker, spent

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    info = open_storage(str(tmp_path / "study.journal"))

    def objective(trial):
        _burn(0.05)
        if trial.number % 3 == 2:
            raise optuna.TrialPruned()  # pruned trials cost CPU too
        return float(trial.suggest_int("x", 0, 9))

    def study():
        return optuna.create_study(storage=info.storage, study_name="b", load_if_exists=True,
                                   sampler=per_trial_sampler("random", 0), direction="maximize")

    ran = run_worker(study(), objective, 10**6, 60, journal=True, cpu_budget_s=0.3)
    trials = study().get_trials()
    assert ran == len(trials) and 6 <= ran <= 8, ran  # 0.05 s each: stops at 0.3 s, one may overshoot
    assert all(t.user_attrs["cpu_s"] >= 0.05 and t.user_attrs["wall_s"] >= t.user_attrs["cpu_s"] * 0.5
               for t in trials)
    cpu, wall = spent(study())
    assert 0.3 <= cpu < 0.3 + 2 * 0.05 + 0.1 and wall > 0
    assert {t.state for t in trials} == {TrialState.COMPLETE, TrialState.PRUNED}
    more = run_worker(study(), objective, 10**6, 60, journal=True, cpu_budget_s=0.5)
    assert 2 <= more <= len(trials) and spent(study())[0] >= 0.5  # counts on from the recorded 0.3 s
    assert run_worker(study(), objective, 10**6, 60, journal=True, cpu_budget_s=0.5) == 0
    assert run_worker(study(), objective, 3, 60, journal=True, cpu_budget_s=100.0) == 0  # n_trials reached
    with pytest.raises(Exception, match="cpu_budget_s must be > 0"):
        run_worker(study(), objective, 10, 60, journal=True, cpu_budget_s=0)



def test_cli_cpu_budget_ends_the_search_and_a_rerun_counts_on(ckpt, tmp_path, capsys):
    from archlab.search import spent

    args = ["search", "--ckpt", ckpt, "--study", "cb", "--cpu-budget", "2", "--out", str(tmp_path),
            "--sampler", "random", "--pruner", "none", *FAST]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "until 2 CPU seconds" in out and "--cpu-budget 2" in out  # the line that starts more workers
    study = load_study("cb", tmp_path / "study.journal")
    n, cpu = len(study.trials), spent(study)[0]
    assert n >= 1 and cpu >= 2 and all(t.state == TrialState.COMPLETE for t in study.trials)
    assert cpu - study.trials[-1].user_attrs["cpu_s"] < 2  # the last trial started below the budget
    assert main(args) == 0 and "this worker ran 0 trials" in capsys.readouterr().out
    assert main([*args, "--cpu-budget", f"{cpu + 100:.1f}", "--trials", str(n + 1)]) == 0
    assert len(load_study("cb", tmp_path / "study.journal").trials) == n + 1  # here --trials ends it

    for bad, msg in ((["--cpu-budget", "0"], "--cpu-budget must be > 0 seconds, got 0"),
                     (["--cpu-budget", "-5"], "--cpu-budget must be > 0 seconds, got -5")):
        assert main([*args, *bad]) == 2 and msg in capsys.readouterr().err
    no_limit = ["search", "--ckpt", ckpt, "--study", "x", "--out", str(tmp_path / "x")]
    assert main(no_limit) == 2 and "--trials and/or --cpu-budget" in capsys.readouterr().err
