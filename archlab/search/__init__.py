"""Architecture search over the DeepNets-1M space with Optuna, scored by GHN-based proxies.

::

    info = open_storage(storage_url(None, "runs/s1"))             # journal runs/s1/study.journal
    study = open_study(info, "s1", ("accuracy",), per_trial_sampler("tpe", 0),
                       make_pruner("median", 20), fingerprint(ghn), settings.scored_as())
    run_worker(study, Objective(ghn, proxy_data(), settings, journal=True), 20, grace_period=60,
               journal=True)
    export_top(study, 5, "top.jsonl")                             # archlab evaluate --genotypes

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
from archlab.search._space import rule_violations, suggest_genotype
from archlab.search._storage import StorageInfo, open_storage, storage_url, study_names
from archlab.search._study import (
    PRUNERS,
    SAMPLERS,
    check_sampler,
    counts,
    load_existing,
    make_pruner,
    open_study,
    per_trial_sampler,
    run_worker,
)

__all__ = [
    "OBJECTIVES", "PRUNERS", "SAMPLERS", "JournalHeartbeat", "Objective", "SearchSettings",
    "StorageInfo", "SurplusTrial", "check_sampler", "counts", "directions", "export_top",
    "load_existing", "make_pruner", "open_storage", "open_study", "pareto_front",
    "per_trial_sampler", "plot_history", "plot_pareto", "reap_stale", "rule_violations",
    "run_worker", "storage_url", "study_names", "suggest_genotype", "top_trials", "trials_table",
]
