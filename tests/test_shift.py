"""Shift scores: percentiles, kNN and Mahalanobis on hand-checked cases, the estimator contract,
the mean+sum readout (by hand and on real embeddings of deeper networks), and `archlab shift`
end to end on real embeddings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.covariance import LedoitWolf

from archlab.analysis import (
    InvalidParameterError,
    NotFittedError,
    ShiftScore,
    embedding_matrix,
    read_embeddings,
    to_percentile,
    verdicts,
    write_embeddings,
)
from archlab.analysis._shift import readout_features
from archlab.cli import main
from archlab.errors import UsageError


def test_percentile_against_a_known_distribution():
    ref = np.arange(100, dtype=float)  # 0..99
    assert to_percentile(np.array([-1.0, 49.5, 1000.0]), ref).tolist() == [0.0, 50.0, 100.0]
    assert to_percentile(np.array([10.0]), ref)[0] == pytest.approx(10.5)  # ties count half
    rng = np.random.default_rng(0)
    cal = np.sort(rng.normal(size=20000))
    # the standard normal's 90th percentile is 1.2816
    assert to_percentile(np.array([1.2816]), cal)[0] == pytest.approx(90.0, abs=0.7)


def test_verdict_bands():
    v = verdicts(np.array([0.0, 89.9, 90.0, 98.9, 99.0, 100.0]))
    assert v.tolist() == ["in-distribution", "in-distribution", "shifted", "shifted", "far", "far"]


def _line_reference(n=50):
    # points 0, 1, ..., n-1 on the first axis of a 2-D space
    return np.stack([np.arange(n, dtype=float), np.zeros(n)], axis=1)


def test_knn_score_is_the_mean_distance_to_the_k_nearest():
    est = ShiftScore(k=2, calibration=0.2, random_state=0).fit(_line_reference(), ids=[f"a{i}" for i in range(50)])
    fitted = {int(i[1:]) for i in est.reference_ids_}
    q = np.array([[-3.0, 4.0]])
    two = sorted(fitted)[:2]  # the two smallest fitted points are the nearest to (-3, 4)
    expected = np.mean([np.hypot(-3.0 - x, 4.0) for x in two])
    assert est.score_samples(q)["knn"][0] == pytest.approx(expected)
    assert est.nearest(q, n=2)[0] == [f"a{x}" for x in two]


def test_mahalanobis_matches_the_shrinkage_covariance():
    rng = np.random.default_rng(1)
    X = rng.multivariate_normal([1.0, -2.0, 0.5], [[2, 0.5, 0], [0.5, 1, 0.2], [0, 0.2, 0.5]], size=400)
    est = ShiftScore(calibration=0.25, random_state=3).fit(X)
    fit_rows = np.setdiff1d(np.arange(400), np.array([int(i) for i in est.calibration_ids_]))
    lw = LedoitWolf().fit(X[fit_rows])
    q = np.array([[4.0, 0.0, -1.0], [1.0, -2.0, 0.5]])
    assert np.allclose(est.score_samples(q)["mahalanobis"], np.sqrt(lw.mahalanobis(q)))


def test_held_out_in_distribution_points_are_uniform_and_outliers_are_far():
    rng = np.random.default_rng(2)
    est = ShiftScore(k=5).fit(rng.normal(size=(3000, 8)))
    inside = est.percentile(rng.normal(size=(2000, 8)))
    assert 45 < inside.mean() < 55 and 0.07 < (inside >= 90).mean() < 0.13
    far = rng.normal(size=(20, 8)) + 6.0
    assert (est.verdict(far) == "far").all()
    assert (est.percentiles(far)["mahalanobis"] > 99).all()


def test_estimator_contract():
    est = ShiftScore(k=3)
    assert est.get_params()["k"] == 3 and not hasattr(est, "nn_")  # __init__ stores only
    with pytest.raises(NotFittedError, match="ShiftScore instance is not fitted"):
        est.percentile(np.zeros((1, 2)))
    with pytest.raises(InvalidParameterError, match=r"The 'k' parameter of ShiftScore must be an int in the range \[1, inf\); got 0"):
        ShiftScore(k=0).fit(_line_reference())
    with pytest.raises(InvalidParameterError, match="'score' parameter of ShiftScore must be one of"):
        ShiftScore(score="umap").fit(_line_reference())
    assert ShiftScore().fit(_line_reference()) is not None
    with pytest.raises(UsageError, match="empty"):
        ShiftScore().fit(np.zeros((0, 4)))
    with pytest.raises(UsageError, match="too few"):
        ShiftScore().fit(np.zeros((8, 4)))
    fitted = ShiftScore().fit(_line_reference())
    with pytest.raises(UsageError, match="3 dimensions but ShiftScore was fitted on 2"):
        fitted.percentile(np.zeros((1, 3)))
    with pytest.raises(UsageError, match="NaN"):
        fitted.percentile(np.full((1, 2), np.nan))


@pytest.fixture(scope="module")
def trained_ckpt(tmp_path_factory):
    """A small GHN-2 trained for a few steps on digits (real embeddings, not random weights)."""
    from archlab.engine import TrainConfig, train_ghn

    out = tmp_path_factory.mktemp("ghn") / "ghn2.pt"
    train_ghn(TrainConfig(ghn="ghn2", dataset="digits", steps=12, meta_batch=2, batch_size=32, widths=(16,),
                          out=str(out), progress=False))
    return out


@pytest.mark.slow
def test_shift_cli_end_to_end(trained_ckpt, tmp_path, capsys):
    ref = tmp_path / "ref.parquet"
    assert main(["embed", "--ckpt", str(trained_ckpt), "--train", "120", "--out", str(ref), "--no-progress"]) == 0
    df = read_embeddings(ref)
    assert len(df) == 120 and df["id"].iloc[0] == "train/0" and set(df["source"]) == {"train"}
    out = tmp_path / "shift"
    assert main(["shift", "--ckpt", str(trained_ckpt), "--ref", str(ref), "--split", "test,deep", "--limit", "3",
                 "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out / "shift.csv")
    assert table["id"].tolist() == ["test/0", "test/1", "test/2", "deep/0", "deep/1", "deep/2"]
    for col in ("source", "percentile", "verdict", "knn", "mahalanobis", "nearest"):
        assert col in table.columns
    assert table["percentile"].between(0, 100).all()
    assert set(table["verdict"]) <= {"in-distribution", "shifted", "far"}
    assert all(len(n.split(";")) == 5 and n.startswith("train/") for n in table["nearest"])
    assert (out / "shift.png").stat().st_size > 5000
    # deep networks are further from the train distribution than test networks, on average
    assert table[table.source == "deep"]["knn"].mean() > table[table.source == "test"]["knn"].mean()


@pytest.mark.slow
def test_shift_refuses_embeddings_of_another_ghn(trained_ckpt, tmp_path, capsys):
    from archlab.ghn import GHNConfig, build_ghn, save_ghn

    other = save_ghn(build_ghn(GHNConfig.preset("ghn2", num_classes=10, image_size=16)), tmp_path / "other.pt")
    ref, q = tmp_path / "ref.parquet", tmp_path / "q.parquet"
    assert main(["embed", "--ckpt", str(trained_ckpt), "--train", "60", "--out", str(ref), "--no-progress"]) == 0
    assert main(["embed", "--ckpt", str(other), "--split", "deep", "--limit", "2", "--out", str(q), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["shift", "--ref", str(ref), "--emb", str(q), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "different GHN checkpoints" in err and "ref.parquet" in err and "q.parquet" in err
    assert main(["shift", "--ckpt", str(other), "--ref", str(ref), "--split", "deep", "--limit", "1",
                 "--out", str(tmp_path / "s")]) == 2
    assert main(["shift", "--ckpt", str(trained_ckpt), "--ref", str(tmp_path / "missing.parquet"),
                 "--split", "deep", "--out", str(tmp_path / "s")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- readouts
def _frame(emb: np.ndarray, num_nodes=None) -> pd.DataFrame:
    df = pd.DataFrame({"id": [f"a{i}" for i in range(len(emb))], "source": "train",
                       "embedding": list(np.asarray(emb, dtype=np.float32))})
    if num_nodes is not None:
        df["num_nodes"] = num_nodes
    return df


def test_mean_sum_features_by_hand():
    emb = np.array([[1.0, 2.0], [3.0, 4.0]])
    # sum-pooled states = mean * num_nodes, in units of 20 nodes: [1, 2] * 10/20, [3, 4] * 30/20
    assert readout_features(emb, np.array([10.0, 30.0]), 20.0).tolist() == [[1, 2, 0.5, 1], [3, 4, 4.5, 6]]
    assert readout_features(emb, None, None) is emb  # the mean readout is the embedding itself


def test_mean_sum_readout_fits_on_the_reference_frame():
    rng = np.random.default_rng(4)
    sizes = rng.integers(50, 300, size=200)
    ref = _frame(rng.normal(size=(200, 3)), sizes)
    est = ShiftScore(readout="mean+sum", calibration=0.25).fit(ref)
    fitted = np.isin(ref["id"], est.reference_ids_)  # ids come from the frame's id column
    assert fitted.sum() == 150 and est.size_scale_ == pytest.approx(sizes[fitted].mean())
    assert est.n_features_in_ == 3 and est.location_.shape == (6,)
    # the same architecture with five times the nodes (same mean of node states) is far
    q = ref.iloc[:1].copy()
    q2 = q.assign(num_nodes=q["num_nodes"] * 5)
    assert est.percentile(q)[0] < 99 and est.verdict(q2)[0] == "far"
    mean_only = ShiftScore().fit(ref)  # the mean readout does not see the node count
    assert mean_only.size_scale_ is None
    assert mean_only.percentile(q2)[0] == mean_only.percentile(q)[0]
    assert mean_only.percentile(q)[0] == ShiftScore().fit(embedding_matrix(ref)).percentile(embedding_matrix(q))[0]


def test_mean_sum_readout_needs_node_counts():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 2))
    with pytest.raises(UsageError, match=r"'mean\+sum' readout needs the node count .* 'num_nodes'"):
        ShiftScore(readout="mean+sum").fit(X)
    with pytest.raises(UsageError, match="num_nodes"):
        ShiftScore(readout="mean+sum").fit(_frame(X))
    with pytest.raises(UsageError, match="non-positive node counts"):
        ShiftScore(readout="mean+sum").fit(_frame(X, np.r_[np.zeros(1), np.full(59, 10.0)]))
    with pytest.raises(InvalidParameterError, match="'readout' parameter of ShiftScore must be one of 'mean', "):
        ShiftScore(readout="max").fit(X)
    est = ShiftScore(readout="mean+sum").fit(_frame(X, np.full(60, 10)))
    with pytest.raises(UsageError, match="query architecture"):
        est.percentile(X[:2])


@pytest.fixture(scope="module")
def deeper_copies():
    """Real GHN-2 embeddings (seeded random weights) of 150 train architectures, 8 test ones and
    the same 8 with three times the cells: the same cells, only more of them."""
    import dataclasses

    import torch

    from archlab.analysis import embed_candidates
    from archlab.engine import Candidate, from_split, from_train_stream
    from archlab.ghn import GHNConfig, build_ghn

    torch.manual_seed(0)
    ghn = build_ghn(GHNConfig.preset("ghn2", num_classes=10, image_size=16)).eval()
    ref = pd.concat(list(embed_candidates(ghn, from_train_stream(150), progress=False)), ignore_index=True)
    base = from_split("test", limit=8)
    deeper = [Candidate(id=f"deeper/{i}", source="deeper",
                        genotype=dataclasses.replace(c.genotype, n_cells=3 * c.genotype.n_cells))
              for i, c in enumerate(base)]
    query = pd.concat(list(embed_candidates(ghn, base + deeper, progress=False)), ignore_index=True)
    return ref, query


@pytest.mark.slow
def test_deeper_networks_of_the_same_cells_score_further_with_the_sum_readout(deeper_copies):
    from sklearn.metrics import roc_auc_score

    ref, query = deeper_copies
    assert (query["num_nodes"].to_numpy()[8:] > query["num_nodes"].to_numpy()[:8]).all()
    y = np.r_[np.zeros(8), np.ones(8)]
    pct = {r: ShiftScore(readout=r).fit(ref).percentile(query) for r in ("mean", "mean+sum")}
    assert (pct["mean+sum"][8:] > pct["mean+sum"][:8]).all()  # every deeper copy is further than its original
    assert roc_auc_score(y, pct["mean+sum"]) > roc_auc_score(y, pct["mean"])
    assert np.median(pct["mean+sum"][8:]) >= 99


def test_shift_cli_readouts_on_files_without_node_counts(tmp_path, capsys):
    rng = np.random.default_rng(6)
    info = {"ghn_fingerprint": "abc"}
    ref, q = tmp_path / "ref.parquet", tmp_path / "q.parquet"
    write_embeddings([_frame(rng.normal(size=(60, 4)))], ref, info)
    write_embeddings([_frame(rng.normal(size=(3, 4)) + 5)], q, info)
    assert main(["shift", "--ref", str(ref), "--emb", str(q), "--out", str(tmp_path / "s")]) == 2
    assert "'mean+sum' readout needs the node count" in capsys.readouterr().err
    assert main(["shift", "--ref", str(ref), "--emb", str(q), "--readout", "mean", "--out", str(tmp_path / "s")]) == 0
    assert "readout mean" in capsys.readouterr().out
    assert (pd.read_csv(tmp_path / "s" / "shift.csv")["verdict"] == "far").all()
