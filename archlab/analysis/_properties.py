"""Properties of trained networks regressed from graph embeddings, as in GHN-2 (Knyazev et al.,
2021, §5.2): :class:`PropertyRegressor` and :func:`predict_properties`.

Labels come from ground-truth runs (:mod:`._ground_truth`; ``archlab rank --ground-truth`` writes
them as ``OUT/properties.csv`` with :func:`properties_frame`). The five properties:

- ``accuracy``: clean top-1 on the test images; ``accuracy_noise``: top-1 under Gaussian input noise;
- ``inference_ms``: milliseconds of one forward pass of a batch; ``convergence``: top-1 after the
  first epoch (convergence speed); ``params``: the parameter count.

Per property three regressors are fitted on the train part and scored on the test part by
Kendall τ (scipy's τ-b) between predicted and true values:

- ``svr``: an RBF support-vector regressor on standardised embeddings, its ``C``, ``gamma`` and
  ``epsilon`` chosen by a ``cv``-fold grid search (R² on the held-out folds);
- ``gbr``: a gradient-boosting regressor (scikit-learn defaults, seeded) on the same inputs;
- ``params-only``: the baseline, an ordinary least-squares line on log(parameter count) alone.
  A line is monotone, so its τ is ± the τ of the parameter count itself, the sign learned on the
  train part: the best any ranking by size alone can do, with no free parameters to overfit.

Targets are standardised before fitting, after a log for ``inference_ms`` and ``params`` (they
span orders of magnitude); τ is computed on the original scale (a log does not change ranks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from archlab.analysis._params import Interval, OneOf, check_is_fitted, validate_params
from archlab.errors import DataError, UsageError

PROPERTIES = ("accuracy", "accuracy_noise", "inference_ms", "convergence", "params")
LOG_PROPERTIES = ("inference_ms", "params")
REGRESSORS = ("svr", "gbr", "params-only")
#: ground-truth record field of each property column of ``properties.csv``
RECORD_FIELDS = {"accuracy": "top1", "accuracy_noise": "top1_noise", "inference_ms": "inference_ms",
                 "convergence": "top1_epoch1", "params": "n_params", "train_seconds": "seconds"}
SVR_GRID = {"C": (0.1, 1.0, 10.0, 100.0), "gamma_scale": (0.01, 0.1, 1.0, 10.0), "epsilon": (0.01, 0.1, 0.5)}


def properties_frame(results: Mapping[str, Mapping[str, Any]],
                     sources: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per ground-truth record (``{id: record}``, as :func:`ground_truth` returns):
    ``id, source`` and the columns of :data:`RECORD_FIELDS` (NaN where a record lacks a field)."""
    rows = []
    for cid, rec in results.items():
        row: dict[str, Any] = {"id": cid, "source": (sources or {}).get(cid, "")}
        for col, key in RECORD_FIELDS.items():
            value = rec.get(key)
            row[col] = math.nan if value is None else float(value)
        rows.append(row)
    df = pd.DataFrame(rows, columns=["id", "source", *RECORD_FIELDS])
    df["params"] = df["params"].round().astype("Int64")  # exact counts in the CSV
    return df


class PropertyRegressor(BaseEstimator):
    """One property regressed from features ``X`` (see the module docstring).

    Parameters: ``model`` (``svr``: RBF SVR with a grid search; ``gbr``: gradient boosting;
    ``linear``: least squares, the params-only baseline's model); ``log_target`` (fit log(y));
    ``cv`` folds of the SVR grid search; ``random_state`` the seed of the folds and the boosting.
    Learned attributes: ``model_``, ``best_params_`` (SVR only, else ``{}``), ``x_mean_``,
    ``x_scale_``, ``y_mean_``, ``y_scale_``, ``n_features_in_``.
    """

    _constraints = {
        "model": OneOf("svr", "gbr", "linear"),
        "log_target": OneOf(True, False),
        "cv": Interval(int, 2, None),
        "random_state": Interval(int, 0, None),
    }

    def __init__(self, model: str = "svr", log_target: bool = False, cv: int = 5, random_state: int = 0):
        self.model = model
        self.log_target = log_target
        self.cv = cv
        self.random_state = random_state

    def min_train(self) -> int:
        """The fewest training rows ``fit`` accepts (two per cross-validation fold)."""
        return 2 * self.cv

    def fit(self, X: Any, y: Any) -> PropertyRegressor:
        """Fit on features ``X`` ``(N, d)`` and targets ``y`` ``(N,)``."""
        validate_params(self)
        X, y = _features(X, "training"), self._target(y)
        if len(X) != len(y):
            raise UsageError(f"{len(X)} feature rows for {len(y)} targets")
        if len(X) < self.min_train():
            raise UsageError(f"{len(X)} training rows are too few for {self.cv}-fold cross-validation "
                             f"(at least {self.min_train()}); train on more architectures")
        self.x_mean_, self.x_scale_ = X.mean(axis=0), _scale(X.std(axis=0))
        self.y_mean_, self.y_scale_ = float(y.mean()), float(_scale(np.array([y.std()]))[0])
        Xs, ys = (X - self.x_mean_) / self.x_scale_, (y - self.y_mean_) / self.y_scale_
        self.n_features_in_ = X.shape[1]
        self.model_, self.best_params_ = self._fit_model(Xs, ys)
        return self

    def _fit_model(self, Xs: np.ndarray, ys: np.ndarray) -> tuple[Any, dict[str, Any]]:
        if self.model == "linear":
            from sklearn.linear_model import LinearRegression

            return LinearRegression().fit(Xs, ys), {}
        if self.model == "gbr":
            from sklearn.ensemble import GradientBoostingRegressor

            return GradientBoostingRegressor(random_state=self.random_state).fit(Xs, ys), {}
        from sklearn.model_selection import GridSearchCV, KFold
        from sklearn.svm import SVR

        d = Xs.shape[1]
        grid = {"C": list(SVR_GRID["C"]), "epsilon": list(SVR_GRID["epsilon"]),
                "gamma": [g / d for g in SVR_GRID["gamma_scale"]]}  # around 1/d, scikit-learn's 'scale'
        folds = KFold(self.cv, shuffle=True, random_state=self.random_state)
        search = GridSearchCV(SVR(kernel="rbf"), grid, cv=folds, n_jobs=1).fit(Xs, ys)
        return search.best_estimator_, dict(search.best_params_)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted property of each row of ``X``, on the original scale."""
        check_is_fitted(self, "model_")
        X = _features(X, "query")
        if X.shape[1] != self.n_features_in_:
            raise UsageError(f"features have {X.shape[1]} dimensions but {type(self).__name__} was "
                             f"fitted on {self.n_features_in_}; embed both with the same GHN")
        y = self.model_.predict((X - self.x_mean_) / self.x_scale_) * self.y_scale_ + self.y_mean_
        return np.exp(y) if self.log_target else y

    def _target(self, y: Any) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64).ravel()
        if not np.isfinite(y).all():
            raise UsageError("targets contain NaN or inf; drop those rows first")
        if self.log_target:
            if (y <= 0).any():
                raise DataError(f"log target needs positive values; got min {y.min():g}")
            y = np.log(y)
        return y


def _features(X: Any, what: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or len(X) == 0:
        raise UsageError(f"the {what} features are empty or not a 2-D (N, d) array (shape {X.shape})")
    if not np.isfinite(X).all():
        raise UsageError(f"the {what} features contain NaN or inf (was the GHN checkpoint corrupt?)")
    return X


def _scale(std: np.ndarray) -> np.ndarray:
    return np.where(std > 1e-12, std, 1.0)  # constant columns stay as they are


# ------------------------------------------------------------------------------ labels and parts
def read_labels(path: str | Any) -> pd.DataFrame:
    """A labels CSV (``archlab rank --ground-truth`` writes ``OUT/properties.csv``), checked: a
    text CSV with an ``id`` column and no id twice."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"labels file {str(path)!r} does not exist")
    head = path.read_bytes()[:4096]
    if head.startswith(b"PAR1") or b"\x00" in head:
        kind = "a Parquet file" if head.startswith(b"PAR1") else "a binary file"
        raise DataError(f"labels file {str(path)!r} is {kind}, not CSV; give the properties.csv that "
                        "`archlab rank --ground-truth` writes (embeddings go to --emb)")
    try:
        df = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as e:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise DataError(f"labels file {str(path)!r} is not a readable CSV ({type(e).__name__}: "
                        f"{str(e)[:200]})") from None
    if "id" not in df.columns:
        raise DataError(f"labels file {str(path)!r} has no 'id' column (columns: {_names(df.columns)}); "
                        "give the properties.csv that `archlab rank --ground-truth` writes")
    df["id"] = df["id"].astype(str)
    dup = df["id"][df["id"].duplicated()].unique().tolist()
    if dup:
        raise DataError(f"labels file {str(path)!r} lists {len(dup)} id(s) twice: {_few(dup)}")
    df.attrs["path"] = str(path)
    return df


def check_properties(properties: Sequence[str], labels: pd.DataFrame) -> list[str]:
    """The properties, validated: known names, none twice, each a numeric column of ``labels``."""
    props = [p.strip() for p in properties if p.strip()]
    unknown = [p for p in props if p not in PROPERTIES]
    if unknown or not props:
        raise UsageError(f"unknown propert{'ies' if len(unknown) > 1 else 'y'} {unknown or props}; "
                         f"choose from {', '.join(PROPERTIES)}")
    if len(set(props)) != len(props):
        raise UsageError(f"properties listed twice: {props}")
    where = labels.attrs.get("path", "the labels table")
    missing = [p for p in props if p not in labels.columns]
    if missing:
        raise DataError(f"{where} has no column {_names(missing)} (columns: {_names(labels.columns)}); "
                        f"choose --properties among those present")
    for p in props:
        if not pd.api.types.is_numeric_dtype(labels[p]):
            raise DataError(f"column {p!r} of {where} is not numeric (e.g. {labels[p].iloc[0]!r})")
    return props


def select_parts(emb: pd.DataFrame, train_on: Sequence[str], test_on: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of ``emb`` whose ``source`` is in ``train_on`` and in ``test_on``."""
    train_on, test_on = _sources(train_on, "train"), _sources(test_on, "test")
    both = sorted(set(train_on) & set(test_on))
    if both:
        raise UsageError(f"source(s) {both} are in both the train and the test part; give disjoint "
                         "--train-on and --test-on")
    present = emb["source"].astype(str).value_counts()
    parts = []
    for name, wanted in (("train", train_on), ("test", test_on)):
        part = emb[emb["source"].astype(str).isin(wanted)]
        if part.empty:
            have = ", ".join(f"{s} ({n})" for s, n in present.items()) or "none"
            raise UsageError(f"the {name} part ({', '.join(wanted)}) is empty: the embeddings hold no "
                             f"architecture of that source; sources present: {have}")
        parts.append(part)
    return parts[0], parts[1]


def join_labels(part: pd.DataFrame, labels: pd.DataFrame, name: str, drop_unmatched: bool,
                notes: list[str]) -> pd.DataFrame:
    """``part`` (embedding rows) inner-joined with ``labels`` on ``id``; embedding rows without a
    label are an error unless ``drop_unmatched`` (then a note)."""
    keep = [c for c in labels.columns if c != "source"]
    joined = part[["id", "source", "embedding", *(["params"] if "params" in part.columns else [])]].rename(
        columns={"params": "emb_params"}).merge(labels[keep], on="id", how="inner")
    lost = part["id"][~part["id"].isin(labels["id"])].tolist()
    where = labels.attrs.get("path", "the labels table")
    if lost and (not drop_unmatched or len(lost) == len(part)):
        raise UsageError(f"{len(lost)} of {len(part)} {name} architectures have no row in {where} "
                         f"(e.g. {_few(lost)}; label ids look like {_few(labels['id'].tolist())})"
                         + ("" if len(lost) == len(part) else "; pass --drop-unmatched to use only the ids in both"))
    if lost:
        notes.append(f"{name}: dropped {len(lost)} architectures without labels (e.g. {_few(lost)})")
    return joined


def _sources(names: Sequence[str] | str, part: str) -> list[str]:
    names = names.split(",") if isinstance(names, str) else names
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise UsageError(f"no source names for the {part} part (e.g. --{part}-on val)")
    return names


def _few(values: Sequence[Any], n: int = 3) -> str:
    values = list(values)
    return ", ".join(repr(v) for v in values[:n]) + (f", ... ({len(values)} in all)" if len(values) > n else "")


def _names(values: Any) -> str:
    return ", ".join(map(str, values))


# ------------------------------------------------------------------------------ the whole job
@dataclass
class PropertyResult:
    """What :func:`predict_properties` found.

    ``scores``: one row per property and regressor (``property, regressor, kendall_tau, n_train,
    n_test``); ``predictions``: one row per test architecture and property (``id, source,
    property, true`` and a column per regressor); ``best_params``: the SVR's grid choice per
    property; ``notes``: rows dropped, and why.
    """

    scores: pd.DataFrame
    predictions: pd.DataFrame
    best_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def predict_properties(emb: pd.DataFrame, labels: pd.DataFrame, train_on: Sequence[str] | str,
                       test_on: Sequence[str] | str, properties: Sequence[str] = PROPERTIES, cv: int = 5,
                       seed: int = 0, drop_unmatched: bool = False, progress: bool = False) -> PropertyResult:
    """Fit every regressor of :data:`REGRESSORS` per property on the ``train_on`` sources of the
    embedding DataFrame ``emb`` (:func:`read_embeddings`) and score it on the ``test_on`` sources.

    The parts are chosen by the embeddings' ``source`` column (``archlab embed --split val`` writes
    ``val``; the labels' own ``source`` column is not used). Rows join ``labels``
    (:func:`read_labels`) on ``id``; a property's NaN labels drop those rows (noted). The
    params-only baseline reads the labels' ``params`` column, else the embedding file's ``params``
    metadata.
    """
    from tqdm.auto import tqdm

    from archlab.analysis._embeddings import embedding_matrix
    from archlab.analysis._metrics import ranking_metrics

    props = check_properties(properties, labels)
    dup = emb["id"][emb["id"].duplicated()].unique().tolist()
    if dup:
        raise UsageError(f"the embeddings hold {len(dup)} id(s) twice: {_few(dup)}")
    notes: list[str] = []
    parts = {name: join_labels(part, labels, name, drop_unmatched, notes)
             for name, part in zip(("train", "test"), select_parts(emb, train_on, test_on))}
    for df in parts.values():
        df["size"] = _params_feature(df)
    rows, preds, best = [], [], {}
    bar = tqdm(total=len(props) * len(REGRESSORS), desc="properties", unit="fit", disable=not progress)
    for prop in props:
        train, test = (_labelled(parts[n], prop, n, notes) for n in ("train", "test"))
        est = {"svr": PropertyRegressor("svr", prop in LOG_PROPERTIES, cv, seed),
               "gbr": PropertyRegressor("gbr", prop in LOG_PROPERTIES, cv, seed),
               "params-only": PropertyRegressor("linear", prop in LOG_PROPERTIES, cv, seed)}
        if len(train) < est["svr"].min_train() or len(test) < 2:
            raise UsageError(f"{prop}: {len(train)} train and {len(test)} test architectures have labels; "
                             f"need at least {est['svr'].min_train()} to train ({cv}-fold cross-validation) "
                             "and 2 to test")
        pred = test[["id", "source"]].assign(property=prop, true=test[prop].to_numpy(dtype=float, na_value=np.nan))
        for reg, model in est.items():
            X = np.log(train["size"].to_numpy())[:, None] if reg == "params-only" else embedding_matrix(train)
            Xt = np.log(test["size"].to_numpy())[:, None] if reg == "params-only" else embedding_matrix(test)
            pred[reg] = model.fit(X, train[prop].to_numpy(dtype=float, na_value=np.nan)).predict(Xt)
            tau = ranking_metrics(pred[reg].to_numpy(), pred["true"].to_numpy())["kendall_tau"]
            rows.append({"property": prop, "regressor": reg, "kendall_tau": tau,
                         "n_train": len(train), "n_test": len(test)})
            bar.update()
        best[prop] = est["svr"].best_params_
        preds.append(pred)
    bar.close()
    return PropertyResult(pd.DataFrame(rows), pd.concat(preds, ignore_index=True), best, notes)


def _params_feature(df: pd.DataFrame) -> pd.Series:
    """The parameter count of each row: the labels' ``params``, else the embedding metadata's."""
    size = pd.Series(np.nan, index=df.index)
    for col in ("params", "emb_params"):
        if col in df.columns:
            size = size.fillna(pd.Series(pd.to_numeric(df[col], errors="coerce").to_numpy(
                dtype=float, na_value=np.nan), index=df.index))
    return size.where(size > 0)


def _labelled(part: pd.DataFrame, prop: str, name: str, notes: list[str]) -> pd.DataFrame:
    """The rows of ``part`` with a finite ``prop`` label and a parameter count (others noted)."""
    y = pd.to_numeric(part[prop], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    no_label, no_size = ~np.isfinite(y), ~np.isfinite(part["size"].to_numpy(dtype=float))
    if no_label.any():
        notes.append(f"{prop}: dropped {int(no_label.sum())} {name} architectures with no label (NaN), "
                     f"e.g. {_few(part['id'][no_label].tolist())}")
    if (no_size & ~no_label).any():
        notes.append(f"{prop}: dropped {int((no_size & ~no_label).sum())} {name} architectures with no "
                     "parameter count (needed by the params-only baseline)")
    return part[~no_label & ~no_size]


def properties_markdown(scores: pd.DataFrame) -> str:
    """The τ table as GitHub markdown: a row per property, a column per regressor."""
    wide = scores.pivot(index="property", columns="regressor", values="kendall_tau")
    n = scores.groupby("property")[["n_train", "n_test"]].first()
    order = [p for p in PROPERTIES if p in wide.index]
    lines = ["| property | SVR τ | GBR τ | params-only τ | train / test |", "|---|---|---|---|---|"]
    for p in order:
        cells = " | ".join(_fmt(wide.loc[p].get(r, math.nan)) for r in REGRESSORS)
        lines.append(f"| {p} | {cells} | {n.loc[p, 'n_train']} / {n.loc[p, 'n_test']} |")
    return "\n".join(lines) + "\n"


def _fmt(v: float) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.3f}"
