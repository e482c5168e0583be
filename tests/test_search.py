"""``archlab search``: the Optuna space, the short-fine-tune proxies, real searches on a journal
file, SQLite and PostgreSQL, several worker processes, a worker killed mid-trial, exports that
``archlab evaluate`` reads, and the errors. Real components only: a random-init MLP GHN, the
embedded digits data, real Optuna storages and real ``python -m archlab`` subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from archlab.cli import main
from archlab.engine import from_search, proxy_data, proxy_score
from archlab.ghn import GHNConfig, build_ghn, save_ghn
from archlab.search import rule_violations, suggest_genotype
from archlab.space import Genotype, plan_network, read_split
from tests._postgres import create_database, postgres_url  # noqa: F401  (session fixture)
from tests._search_helpers import load_study, search_args, search_ghn

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
ckpt = pytest.fixture(scope="module", name="ckpt")(search_ghn)
TINY = Genotype(normal=(("conv_3x3", 0), ("skip_connect", 1)), normal_concat=(2,),
                reduce=(("max_pool_3x3", 0), ("avg_pool_3x3", 1)), reduce_concat=(2,),
                n_cells=3, preproc=True, C_mult=1)


def _worker(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "archlab", *args], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, env=env, cwd=Path(__file__).parent.parent)


def _states(study) -> Counter:
    return Counter(t.state.name for t in study.get_trials(deepcopy=False))


def _check_complete(study, n: int) -> None:
    """Exactly n finished trials, none left running, every failure accounted for."""
    trials = study.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # no duplicate numbers
    assert sum(t.state in FINISHED for t in trials) == n, _states(study)
    assert not [t for t in trials if t.state == TrialState.RUNNING], _states(study)
    for a in (t.user_attrs for t in trials if t.state in FINISHED):
        assert a["candidate_id"] == f"search/{a['hash'][:12]}-C{a['width']}"


# --- the space --------------------------------------------------------------------------------

def test_2000_random_trials_give_valid_genotypes():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    choices: dict[str, set] = {}
    for _ in range(2000):
        trial = study.ask()
        g, width, repairs = suggest_genotype(trial)
        assert not rule_violations(g), (g, rule_violations(g))
        plan_network(g, C=width, num_classes=10, input="cifar", image_size=16)  # raises if invalid
        assert width in (16, 24, 32)
        assert Genotype.from_dict(json.loads(g.to_json())) == g
        for name, dist in trial.distributions.items():
            choices.setdefault(name, set()).add(optuna.distributions.distribution_to_json(dist))
        study.tell(trial, 0.0)
    assert all(len(v) == 1 for v in choices.values()), "a parameter name changed its choices"
    assert {"steps", "n_cells", "C", "normal_n1_inputs", "reduce_pool_n0_op0"} <= set(choices)


@pytest.mark.parametrize("sampler", ["tpe", "cmaes", "nsga2"])
def test_every_sampler_proposes_valid_genotypes(sampler):
    from archlab.search import per_trial_sampler

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=per_trial_sampler(sampler, 0))
    seen = []
    for i in range(12):
        trial = study.ask()
        g, width, _ = suggest_genotype(trial)
        assert not rule_violations(g)
        plan_network(g, C=width, num_classes=10, input="cifar", image_size=16)
        seen.append(g.hash)
        study.tell(trial, float(g.n_cells + i % 3))
    assert len(set(seen)) > 6


def test_repairs_are_deterministic_and_recorded():
    params = {"steps": 2, "concat_n1": True, "normal_n1_inputs": "0-2", "normal_n0_op0": "cse",
              "normal_n0_op1": "cse", "normal_n1_op0": "conv_7x7", "normal_n1_op1": "conv_5x5",
              "reduce_pool_only": True, "reduce_pool_n0_op0": "none", "reduce_pool_n0_op1": "skip_connect",
              "reduce_pool_n1_inputs": "1-2", "reduce_pool_n1_op0": "max_pool_3x3",
              "reduce_pool_n1_op1": "none", "n_cells": 5, "ks": 3, "stem_type": 1, "norm": "bn",
              "C_mult": 2, "fc_layers": 1, "glob_avg": True, "C": 16}
    g, width, repairs = suggest_genotype(optuna.trial.FixedTrial(params))
    assert g.normal == (("cse", 0), ("skip_connect", 1), ("conv_7x7", 0), ("conv_3x3", 2))
    assert len(repairs) == 2 and width == 16 and not rule_violations(g)
    none_learnable = {**params, "normal_n0_op0": "none", "normal_n0_op1": "skip_connect",
                      "normal_n1_op0": "max_pool_3x3", "normal_n1_op1": "none"}
    g2, _, r2 = suggest_genotype(optuna.trial.FixedTrial(none_learnable))
    assert g2.normal[1] == ("conv_3x3", 1) and r2 == ["normal[1]: no learnable op -> conv_3x3"]


# --- the proxies ------------------------------------------------------------------------------

def test_proxies_are_reproducible_and_stop_on_request(ckpt):
    from archlab.ghn import load_ghn

    ghn = load_ghn(ckpt)
    data = proxy_data(batch_size=16, max_eval_images=32)
    cand = from_search(TINY, 16)
    assert cand.id != from_search(TINY, 32).id  # one cell at two widths: two architectures
    a = proxy_score(cand, "random-ft", None, data, steps=3, seed=1, eval_every=1)
    b = proxy_score(cand, "random-ft", None, data, steps=3, seed=1, eval_every=1)
    assert a.history == b.history and [s for s, _ in a.history] == [0, 1, 2, 3] and a.steps == 3
    g = proxy_score(cand, "ghn", ghn, data, steps=3, seed=1)
    assert g.steps == 0 and len(g.history) == 1
    seen = []
    ft = proxy_score(cand, "ghn-ft", ghn, data, steps=4, seed=1, eval_every=1,
                     on_eval=lambda step, acc: seen.append(step) or step >= 2)
    assert ft.stopped and ft.steps == 2 and seen == [0, 1, 2]


# --- a real search on the default journal -----------------------------------------------------

@pytest.fixture(scope="module")
def journal_run(ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("search") / "run"
    assert main(search_args(ckpt, out, "s1", 3, "--sampler", "random")) == 0
    return out


def test_search_on_journal_records_every_trial(journal_run, capsys):
    study = load_study("s1", journal_run / "study.journal")
    _check_complete(study, 3)
    for t in study.trials:
        a = t.user_attrs
        g = Genotype.from_dict(json.loads(a["genotype"]))
        assert a["hash"] == g.hash and a["params"] > 0 and a["flops"] > 0 and "heartbeat" in a
        assert len(t.intermediate_values) >= 2  # reported at step 0 and after the fine-tune
    assert study.user_attrs["proxy"] == "ghn-ft" and len(study.user_attrs["ghn_fingerprint"]) == 16
    assert (journal_run / "history.png").stat().st_size > 0
    assert len((journal_run / "trials.csv").read_text().splitlines()) == 4


def test_rerun_and_cached_architecture_are_not_trained(journal_run, ckpt, capsys):
    storage = str(journal_run / "study.journal")
    # the study already has 3 trials: a worker asking for 3 has nothing to do
    assert main(search_args(ckpt, journal_run, "s1", 3, "--sampler", "random")) == 0
    assert "this worker ran 0 trials" in capsys.readouterr().out
    study = load_study("s1", storage)
    first = study.trials[0]
    study.enqueue_trial(first.params)
    assert main(search_args(ckpt, journal_run, "s1", 4, "--sampler", "random")) == 0
    assert "cached from trial 0" in capsys.readouterr().out
    again = study.trials[3]
    assert again.user_attrs["cached_from"] == 0 and again.values == first.values
    assert "steps_run" not in again.user_attrs and not again.intermediate_values


def test_export_top_is_read_by_evaluate(journal_run, tmp_path, ckpt, capsys):
    out = tmp_path / "top.jsonl"
    args = ["search", "--study", "s1", "--storage", str(journal_run / "study.journal"),
            "--export-top", "2", "--out", str(out)]
    assert main(args) == 0
    recs = list(read_split(out))
    assert len(recs) == 2 and {"id", "hash", "genotype", "meta", "candidate_id"} <= set(recs[0])
    assert recs[0]["meta"]["accuracy"] >= recs[1]["meta"]["accuracy"]
    assert recs[0]["candidate_id"] == f"search/{recs[0]['hash'][:12]}-C{recs[0]['meta']['C']}"
    capsys.readouterr()
    assert main(["evaluate", "--ckpt", ckpt, "--genotypes", str(out), "--limit", "1",
                 "--max-images", "32", "--device", "cpu", "--no-progress"]) == 0
    assert "1 architectures" in capsys.readouterr().out


def test_retrain_top_trains_the_finalists_into_the_ground_truth_cache(journal_run, tmp_path, capsys):
    from archlab.analysis._ground_truth import cache_file

    out = tmp_path / "final"
    assert main(["search", "--study", "s1", "--storage", str(journal_run / "study.journal"), "--retrain-top", "1",
                 "--epochs", "1", "--device", "cpu", "--out", str(out)]) == 0
    table = pd.read_csv(out / "retrained.csv")
    assert len(table) == 1 and table["id"].iloc[0].startswith("search/") and 0 <= table["trained"].iloc[0] <= 100
    assert cache_file(out, table["id"].iloc[0]).exists()  # the ranking issue's cache, reused on a rerun
    assert "Kendall tau" in capsys.readouterr().out


def test_median_pruner_prunes(ckpt, tmp_path):
    # deterministic (seeded GHN, sampler, data order): trials 1-3 fall below trial 0's median
    args = search_args(ckpt, tmp_path, "p", 4, "--sampler", "random", "--pruner", "median",
                   "--pruner-startup", "1", "--eval-every", "1", "--seed", "1")
    assert main(args) == 0
    study = load_study("p", str(tmp_path / "study.journal"))
    _check_complete(study, 4)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, _states(study)
    assert all(t.user_attrs.get("steps_run", 0) < 2 or "cached_from" in t.user_attrs for t in pruned)


def test_multi_objective_on_sqlite_writes_pareto_front(ckpt, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    args = search_args(ckpt, tmp_path, "mo", 2, "--storage", url, "--objectives", "accuracy,params",
                   "--sampler", "nsga2")
    assert main(args) == 0
    study = load_study("mo", url)
    _check_complete(study, 2)
    assert all(t.values[1] == t.user_attrs["params"] for t in study.trials)
    assert (tmp_path / "pareto_params.png").stat().st_size > 0


# --- errors -----------------------------------------------------------------------------------

def test_clear_errors(ckpt, journal_run, tmp_path, capsys):
    def error(args: list[str]) -> str:
        assert main(args) == 2
        return capsys.readouterr().err

    assert "unknown sampler 'sobol'" in error(search_args(ckpt, tmp_path / "a", "x", 1, "--sampler", "sobol"))
    msg = error(["search", "--study", "nope", "--storage", str(journal_run / "study.journal"),
                 "--export-top", "1", "--out", str(tmp_path / "t.jsonl")])
    assert "no study 'nope'" in msg and "s1" in msg
    other = tmp_path / "other.pt"
    import torch

    torch.manual_seed(1)
    save_ghn(build_ghn(GHNConfig.preset("mlp", num_classes=10, image_size=16)), other)
    msg = error(search_args(str(other), journal_run, "s1", 3))
    assert "fingerprint" in msg and "s1" in msg
    assert "post='noise', not 'orth'" in error(search_args(ckpt, journal_run, "s1", 3, "--ft-post", "orth"))
    msg = error(search_args(ckpt, tmp_path / "b", "x", 1, "--storage", "postgresql://user@127.0.0.1:1/db"))
    assert "cannot reach the study storage 'postgresql://user@127.0.0.1:1/db'" in msg
    assert "pruning needs a single objective" in error(
        search_args(ckpt, tmp_path / "c", "x", 1, "--objectives", "accuracy,flops", "--pruner", "median"))
    assert "--objectives" in error(search_args(ckpt, tmp_path / "d", "x", 1, "--objectives", "params"))


def test_help_does_not_import_optuna():
    code = ("import sys; from archlab.cli import build_parser; build_parser(['search']); "
            "print('optuna' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


# --- several worker processes ----------------------------------------------------------------

def _wait(procs: list[subprocess.Popen], logs: list[Path], timeout: float = 400) -> None:
    deadline = time.time() + timeout
    for p, log in zip(procs, logs):
        try:
            rc = p.wait(max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"worker timed out; log:\n{log.read_text()[-3000:]}")
        assert rc == 0, log.read_text()[-3000:]


def _run_workers(ckpt: str, out: Path, storage: str, n_workers: int, n_trials: int) -> None:
    args = search_args(ckpt, out, "multi", n_trials, "--storage", storage, "--sampler", "random",
                   "--pruner", "none")
    logs = [out / f"worker{i}.log" for i in range(n_workers)]
    out.mkdir(parents=True, exist_ok=True)
    _wait([_worker(args, log) for log in logs], logs)


def _killed_worker_is_retried(ckpt: str, out: Path, storage: str, ready: str) -> optuna.Study:
    """Kill a worker mid-trial (once its running trial has user attribute ``ready``); a second
    worker fails the stale trial, retries it with the same parameters, and finishes the study."""
    out.mkdir(parents=True, exist_ok=True)
    args = search_args(ckpt, out, "kill", 2, "--storage", storage, "--sampler", "random", "--pruner", "none",
                   "--heartbeat-interval", "1", "--grace-period", "3")
    args[args.index("--ft-steps") + 1] = "40"
    victim = _worker(args, out / "victim.log")
    study = None
    deadline = time.time() + 300
    while time.time() < deadline:
        time.sleep(0.3)
        try:
            study = load_study("kill", storage)
        except KeyError:
            continue
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if running and ready in running[0].user_attrs:
            break
        assert victim.poll() is None, (out / "victim.log").read_text()
    else:
        pytest.fail("the worker never started a trial")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed = running[0].number
    _wait([_worker(args, out / "rescuer.log")], [out / "rescuer.log"])
    trials = study.get_trials(deepcopy=False)
    assert trials[killed].state == TrialState.FAIL
    retries = [t for t in trials if t.user_attrs.get("retry_of") == killed]
    assert len(retries) == 1 and retries[0].state in FINISHED
    assert retries[0].params == trials[killed].params
    _check_complete(study, 2)
    return study


def _journal(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path)


@pytest.mark.slow
def test_two_workers_share_a_journal(ckpt, tmp_path):
    storage = _journal(tmp_path / "study.journal")
    _run_workers(ckpt, tmp_path, storage, 2, 4)
    study = load_study("multi", storage)
    _check_complete(study, 4)
    assert all(t.user_attrs.get("surplus") for t in study.trials if t.state == TrialState.FAIL)


@pytest.mark.slow
def test_killed_worker_on_journal_is_retried(ckpt, tmp_path):
    storage = _journal(tmp_path / "study.journal")
    _killed_worker_is_retried(ckpt, tmp_path, storage, ready="heartbeat")  # the fine-tune has begun


@pytest.mark.slow
def test_four_workers_share_a_postgres_study(ckpt, tmp_path, postgres_url):  # noqa: F811
    url = create_database(postgres_url, "four")
    _run_workers(ckpt, tmp_path, url, 4, 6)
    study = load_study("multi", url)
    _check_complete(study, 6)
    assert all(t.user_attrs.get("surplus") for t in study.trials if t.state == TrialState.FAIL)


@pytest.mark.slow
def test_killed_worker_on_postgres_is_retried(ckpt, tmp_path, postgres_url):  # noqa: F811
    url = create_database(postgres_url, "kill")
    _killed_worker_is_retried(ckpt, tmp_path, url, ready="worker")  # the last attribute before scoring
