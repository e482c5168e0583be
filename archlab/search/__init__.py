"""Architecture search over the DeepNets-1M space with Optuna, scored by GHN-based proxies.

::

    info = open_storage(storage_url(None, "runs/s1"))             # journal runs/s1/study.journal
    study = open_study(info, "s1", ("accuracy",), per_trial_sampler("tpe", 0),
                       make_pruner("median", 20), fingerprint(ghn), settings.scored_as())
    run_worker(study, Objective(ghn, proxy_data(), settings, journal=True), 20, grace_period=60,
               journal=True)
    export_top(study, 5, "top.jsonl")                             # archlab evaluate --genotypes
    run_worker(study, objective, 10**6, 60, journal=True, cpu_budget_s=240)  # a CPU-time budget
    spent(study)                                                   # (cpu_s, wall_s) of its trials
    finalists(study, 3)                                            # (Candidate, proxy) to train fully

Optuna is imported only when a study is opened (``archlab search --help`` never loads it).
"""

from __future__ import annotations

from archlab.search._export import export_top, top_trials, trials_table
from archlab.search._heartbeat import JournalHeartbeat, reap_stale
from archlab.search._objective import (
    OBJECTIVES,
    Objective,
    SearchSettings,
    SurplusTrial,
    directions,
)
from archlab.search._plots import pareto_front, plot_history, plot_pareto
from archlab.search._retrain import finalists, retrain_top
from archlab.search._space import rule_violations, suggest_genotype
from archlab.search._storage import StorageInfo, open_storage, storage_url, study_names
from archlab.search._study import (
    PRUNERS,
    SAMPLERS,
    Timed,
    check_sampler,
    counts,
    load_existing,
    make_pruner,
    open_study,
    per_trial_sampler,
    run_worker,
    spent,
)

__all__ = [
    "OBJECTIVES", "PRUNERS", "SAMPLERS", "JournalHeartbeat", "Objective", "SearchSettings",
    "StorageInfo", "SurplusTrial", "Timed", "check_sampler", "counts", "directions", "export_top",
    "finalists", "load_existing", "make_pruner", "open_storage", "open_study", "pareto_front",
    "per_trial_sampler", "plot_history", "plot_pareto", "reap_stale", "retrain_top", "rule_violations",
    "run_worker", "spent", "storage_url", "study_names", "suggest_genotype", "top_trials", "trials_table",
]
