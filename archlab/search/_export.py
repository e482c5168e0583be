"""What a study found: the trials as a table, the best genotypes as a JSON Lines file.

The export uses the split format of :mod:`archlab.space._storage` (``{"id", "hash", "genotype",
"meta"}``) plus ``candidate_id`` (``search/<hash12>-C<width>``), so ``archlab evaluate/embed/shift
--genotypes F.jsonl`` read it and keep the search's candidate ids; ``meta.C`` is the width.
"""

from __future__ import annotations

import json
import os
from typing import Any

from archlab.errors import UsageError
from archlab.space import write_split

COLUMNS = ["number", "state", "accuracy", "params", "flops", "width", "candidate_id", "hash",
           "cached_from", "retry_of", "surplus", "steps_run", "worker", "cpu_s", "wall_s"]


def accuracy_index(study: Any) -> int:
    """Position of the accuracy objective among the study's values."""
    objectives = study.user_attrs.get("objectives") or ["accuracy"]
    return list(objectives).index("accuracy") if "accuracy" in objectives else 0


def trials_table(study: Any) -> Any:
    """One row per trial (see :data:`COLUMNS`); ``accuracy`` is empty unless COMPLETE."""
    import pandas as pd

    k = accuracy_index(study)
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        rows.append({"number": t.number, "state": t.state.name,
                     "accuracy": t.values[k] if t.values else None,
                     **{c: a.get(c) for c in COLUMNS[3:]}})
    return pd.DataFrame(rows, columns=COLUMNS)


def top_trials(study: Any, k: int) -> list[Any]:
    """The ``k`` best COMPLETE trials by accuracy, one per architecture (genotype and width)."""
    from optuna.trial import TrialState

    i = accuracy_index(study)
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.values and "genotype" in t.user_attrs]
    done.sort(key=lambda t: (-t.values[i], t.number))
    out, seen = [], set()
    for t in done:
        key = t.user_attrs.get("cache_key", t.user_attrs["hash"])
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out[:k]


def export_top(study: Any, k: int, path: str | os.PathLike) -> int:
    """Write the ``k`` best architectures of ``study`` to ``path``; returns how many."""
    if k < 1:
        raise UsageError(f"--export-top must be >= 1, got {k}")
    best = top_trials(study, k)
    if not best:
        raise UsageError(f"study {study.study_name!r} has no completed trial to export yet")
    i = accuracy_index(study)
    records = []
    for rank, t in enumerate(best):
        a = t.user_attrs
        meta = {"C": int(a["width"]), "trial": t.number, "accuracy": t.values[i],
                "params": a.get("params"), "flops": a.get("flops"), "study": study.study_name,
                "proxy": study.user_attrs.get("proxy"), "ft_steps": study.user_attrs.get("ft_steps"),
                "ghn_fingerprint": study.user_attrs.get("ghn_fingerprint")}
        records.append({"id": rank, "hash": a["hash"], "genotype": json.loads(a["genotype"]),
                        "meta": meta, "candidate_id": a["candidate_id"]})
    return write_split(records, path)
