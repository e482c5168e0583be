"""Property prediction from graph embeddings: real embeddings (a randomly initialised archlab GHN
on real DeepNets-1M val and test architectures) with labels that are known functions of them, the
params-only baseline, the estimator contract, every refusal, and `archlab properties` and
`archlab rank --ground-truth` (its properties.csv) end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from archlab.analysis import (
    PROPERTIES,
    GroundTruthSpec,
    InvalidParameterError,
    NotFittedError,
    PropertyRegressor,
    embed_candidates,
    embedding_matrix,
    file_info,
    predict_properties,
    properties_frame,
    properties_markdown,
    read_labels,
    write_embeddings,
)
from archlab.analysis._ground_truth import cache_file
from archlab.cli import main
from archlab.engine import from_split
from archlab.errors import DataError, UsageError

N = 30  # architectures per part


@pytest.fixture(scope="module")
def ghn():
    from archlab.ghn import GHNConfig, build_ghn

    torch.manual_seed(0)
    return build_ghn(GHNConfig.preset("mlp", num_classes=10, image_size=16))


@pytest.fixture(scope="module")
def emb(ghn) -> pd.DataFrame:
    cands = from_split("val", limit=N) + from_split("test", limit=N)
    df = pd.concat(list(embed_candidates(ghn, cands, progress=False)), ignore_index=True)
    df.attrs["archlab"] = file_info(ghn)
    return df


def _pc1(emb: pd.DataFrame) -> np.ndarray:
    """The first principal component of the standardised embeddings, unit variance."""
    X = embedding_matrix(emb).astype(float)
    Xs = (X - X.mean(0)) / (X.std(0) + 1e-12)
    pc = Xs @ np.linalg.svd(Xs - Xs.mean(0), full_matrices=False)[2][0]
    return pc / pc.std()


def _labels(emb: pd.DataFrame) -> pd.DataFrame:
    """Labels with known relations: accuracies and time monotone in the embedding's first
    principal component, convergence decreasing in size, params the real parameter counts."""
    pc = _pc1(emb)
    params = emb["params"].to_numpy(dtype=float)
    return pd.DataFrame({"id": emb["id"], "source": emb["source"], "accuracy": 60 + 20 * np.tanh(pc),
                         "accuracy_noise": 40 + 10 * pc, "inference_ms": np.exp(0.5 * pc),
                         "convergence": 1e6 / params, "params": emb["params"], "train_seconds": 1.0})


def test_properties_frame_from_ground_truth_records():
    spec = GroundTruthSpec(epochs=1).key()
    results = {"test/0": {"id": "test/0", "spec": spec, "top1": 91.5, "top1_noise": 80.25, "inference_ms": 3.5,
                          "top1_epoch1": 70.0, "seconds": 12.0, "n_params": 403434, "history": []},
               "test/1": {"id": "test/1", "spec": spec, "top1": 85.0, "inference_ms": 2.0, "top1_epoch1": 60.0,
                          "seconds": 8.0, "n_params": 305434, "history": []}}  # an older record: no noise
    df = properties_frame(results, {"test/0": "test", "test/1": "test"})
    assert df.columns.tolist() == ["id", "source", *PROPERTIES, "train_seconds"]
    assert df.loc[0].drop("id").tolist() == ["test", 91.5, 80.25, 3.5, 70.0, 403434, 12.0]
    assert np.isnan(df.loc[1, "accuracy_noise"]) and df["params"].tolist() == [403434, 305434]
    assert "403434," in df.to_csv(index=False)  # parameter counts stay exact integers in the CSV


def test_svr_recovers_monotone_relations_and_the_baseline_recovers_params(emb):
    res = predict_properties(emb, _labels(emb), "val", "test", seed=0)
    tau = res.scores.set_index(["property", "regressor"])["kendall_tau"]
    assert res.scores[["n_train", "n_test"]].drop_duplicates().values.tolist() == [[N, N]]
    for prop in ("accuracy", "accuracy_noise", "inference_ms"):
        assert tau[prop, "svr"] > 0.85, (prop, tau[prop])
        assert tau[prop, "gbr"] > 0.6, (prop, tau[prop])
    assert tau["params", "params-only"] == pytest.approx(1.0)
    assert tau["convergence", "params-only"] == pytest.approx(1.0)  # a decreasing relation: sign learned
    assert abs(tau["accuracy", "params-only"]) < 0.9  # size alone does not explain the embedding
    pred = res.predictions
    assert pred["id"].drop_duplicates().tolist() == [f"test/{i}" for i in range(N)]
    assert set(pred["property"]) == set(PROPERTIES) and (pred["source"] == "test").all()
    params = pred[pred["property"] == "params"]
    assert np.allclose(params["params-only"], params["true"], rtol=1e-6)  # log-log line through the data
    assert set(res.best_params["accuracy"]) == {"C", "gamma", "epsilon"}
    md = properties_markdown(res.scores)
    assert md.splitlines()[0] == "| property | SVR τ | GBR τ | params-only τ | train / test |"
    assert md.splitlines()[-1].startswith("| params | ") and f"1.000 | {N} / {N} |" in md


def test_estimator_contract():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    est = PropertyRegressor(model="gbr")
    assert est.get_params() == {"model": "gbr", "log_target": False, "cv": 5, "random_state": 0}
    assert not hasattr(est, "model_")
    with pytest.raises(NotFittedError, match="PropertyRegressor instance is not fitted"):
        est.predict(X)
    with pytest.raises(InvalidParameterError, match="'model' parameter of PropertyRegressor must be one of"):
        PropertyRegressor(model="xgb").fit(X, X[:, 0])
    with pytest.raises(InvalidParameterError, match=r"'cv' parameter .* in the range \[2, inf\); got 1"):
        PropertyRegressor(cv=1).fit(X, X[:, 0])
    assert est.fit(X, X[:, 0]) is est and est.n_features_in_ == 3
    with pytest.raises(UsageError, match="features have 2 dimensions but PropertyRegressor was fitted on 3"):
        est.predict(X[:, :2])
    with pytest.raises(DataError, match="log target needs positive values"):
        PropertyRegressor(log_target=True).fit(X, X[:, 0])
    with pytest.raises(UsageError, match="9 training rows are too few for 5-fold cross-validation"):
        PropertyRegressor().fit(X[:9], X[:9, 0])
    lin = PropertyRegressor("linear", log_target=True).fit(X[:, :1], np.exp(2 * X[:, 0] + 1))
    assert np.allclose(lin.predict(X[:5, :1]), np.exp(2 * X[:5, 0] + 1))


def test_ids_that_do_not_join_are_refused_or_dropped(emb):
    labels = _labels(emb)
    labels = labels[~labels["id"].isin(["val/3", "val/7"])]
    with pytest.raises(UsageError, match=r"2 of 30 train architectures have no row in the labels table \(e.g. 'val/3', "
                                         r"'val/7'.*--drop-unmatched"):
        predict_properties(emb, labels, "val", "test", properties=["params"])
    res = predict_properties(emb, labels, "val", "test", properties=["params"], drop_unmatched=True)
    assert res.scores["n_train"].iloc[0] == N - 2
    assert res.notes == ["train: dropped 2 architectures without labels (e.g. 'val/3', 'val/7')"]
    other = labels.assign(id="arch-" + labels["id"])
    with pytest.raises(UsageError, match=r"30 of 30 train .* label ids look like 'arch-val/0'"):
        predict_properties(emb, other, "val", "test", drop_unmatched=True)


def test_parts_are_checked(emb):
    labels = _labels(emb)
    with pytest.raises(UsageError, match=r"the train part \(wide\) is empty.*sources present: val \(30\), test \(30\)"):
        predict_properties(emb, labels, "wide", "test")
    with pytest.raises(UsageError, match=r"\['val'\] are in both the train and the test part"):
        predict_properties(emb, labels, "val", "test,val")
    small = emb[emb["id"].isin([f"val/{i}" for i in range(6)]) | (emb["source"] == "test")]
    with pytest.raises(UsageError, match="accuracy: 6 train and 30 test architectures have labels; need at least 10"):
        predict_properties(small, labels, "val", "test")
    res = predict_properties(small, labels, "val", "test", properties=["params"], cv=3)
    assert res.scores["n_train"].tolist() == [6, 6, 6]
    with pytest.raises(UsageError, match=r"the embeddings hold 1 id\(s\) twice: 'test/0'"):
        predict_properties(pd.concat([emb, emb[emb["id"] == "test/0"]]), labels, "val", "test")


def test_properties_and_nan_labels(emb):
    labels = _labels(emb)
    with pytest.raises(DataError, match=r"labels table has no column accuracy \(columns: id, source, top5, "):
        predict_properties(emb, labels.rename(columns={"accuracy": "top5"}), "val", "test")
    with pytest.raises(UsageError, match="unknown property \\['acc'\\]; choose from accuracy, accuracy_noise"):
        predict_properties(emb, labels, "val", "test", properties=["acc"])
    labels.loc[labels["id"].isin(["val/0", "test/5"]), "accuracy_noise"] = np.nan
    res = predict_properties(emb, labels, "val", "test", properties=["accuracy", "accuracy_noise"])
    n = res.scores.set_index(["property", "regressor"])
    assert n.loc[("accuracy_noise", "svr"), ["n_train", "n_test"]].tolist() == [N - 1, N - 1]
    assert n.loc[("accuracy", "svr"), "n_train"] == N
    assert res.notes == ["accuracy_noise: dropped 1 train architectures with no label (NaN), e.g. 'val/0'",
                         "accuracy_noise: dropped 1 test architectures with no label (NaN), e.g. 'test/5'"]
    labels["accuracy_noise"] = np.nan
    with pytest.raises(UsageError, match="accuracy_noise: 0 train and 0 test architectures have labels"):
        predict_properties(emb, labels, "val", "test", properties=["accuracy_noise"])


def test_labels_files_are_checked(emb, tmp_path):
    pq = tmp_path / "emb.parquet"
    write_embeddings([emb], pq, emb.attrs["archlab"])
    with pytest.raises(DataError, match="is a Parquet file, not CSV"):
        read_labels(pq)
    (tmp_path / "x.csv").write_text("name,top1\na,1\n")
    with pytest.raises(DataError, match=r"has no 'id' column \(columns: name, top1\)"):
        read_labels(tmp_path / "x.csv")
    (tmp_path / "d.csv").write_text("id,accuracy\na,1\na,2\n")
    with pytest.raises(DataError, match="lists 1 id\\(s\\) twice: 'a'"):
        read_labels(tmp_path / "d.csv")
    with pytest.raises(UsageError, match="does not exist"):
        read_labels(tmp_path / "missing.csv")


def _write_inputs(emb: pd.DataFrame, folder) -> tuple[str, str]:
    """Two embedding files (val and test, as `archlab embed --split` writes them) and a labels CSV."""
    paths = []
    for source in ("val", "test"):
        path = folder / f"{source}.parquet"
        write_embeddings([emb[emb["source"] == source].reset_index(drop=True)], path, emb.attrs["archlab"])
        paths.append(str(path))
    labels = folder / "labels.csv"
    _labels(emb).to_csv(labels, index=False)
    return ",".join(paths), str(labels)


def test_properties_cli_end_to_end(emb, tmp_path, capsys):
    embs, labels = _write_inputs(emb, tmp_path)
    out = tmp_path / "props"
    args = ["properties", "--emb", embs, "--labels", labels, "--train-on", "val", "--test-on", "test",
            "--cv", "3", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    scores = pd.read_csv(out / "properties.csv")
    assert scores.columns.tolist() == ["property", "regressor", "kendall_tau", "n_train", "n_test"]
    assert len(scores) == 15 and scores["kendall_tau"].between(-1, 1).all()
    assert scores.set_index(["property", "regressor"]).loc[("params", "params-only"), "kendall_tau"] == 1.0
    pred = pd.read_csv(out / "predictions.csv")
    assert pred.columns.tolist() == ["id", "source", "property", "true", "svr", "gbr", "params-only"]
    assert len(pred) == 5 * N and set(pred["id"]) == {f"test/{i}" for i in range(N)}
    assert (out / "properties.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "properties.md").read_text()
    assert md in capsys.readouterr().out and len(md.splitlines()) == 2 + 5
    # a subset of properties; refusals exit with status 2 and a message naming the problem
    assert main([*args[:-2], "--properties", "params,accuracy", "--out", str(tmp_path / "two")]) == 0
    assert pd.read_csv(tmp_path / "two" / "properties.csv")["property"].unique().tolist() == ["params", "accuracy"]
    first_emb = embs.split(",")[0]
    assert main(["properties", "--emb", embs, "--labels", first_emb, "--train-on", "val", "--test-on", "test",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "archlab properties: error: labels file" in capsys.readouterr().err
    assert main([*args[:5], "--train-on", "val", "--test-on", "deep", "--out", str(tmp_path / "bad")]) == 2
    assert "sources present: val (30), test (30)" in capsys.readouterr().err


def test_rank_ground_truth_writes_the_labels(tmp_path):
    """`archlab rank --ground-truth` writes OUT/properties.csv from its (here already cached) results."""
    spec = GroundTruthSpec(epochs=1)
    cands = from_split("test", limit=3)
    for i, cand in enumerate(cands):
        rec = {"id": cand.id, "spec": spec.key(), "top1": 50.0 + i, "top1_noise": 40.0 + i, "seconds": 2.0,
               "top1_epoch1": 30.0 + i, "history": [], "n_params": 1000 + i, "inference_ms": 1.5 + i}
        path = cache_file(tmp_path, cand.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec))
    assert main(["rank", "--split", "test", "--limit", "3", "--methods", "params", "--ground-truth",
                 "--epochs", "1", "--device", "cpu", "--no-progress", "--out", str(tmp_path)]) == 0
    labels = read_labels(tmp_path / "properties.csv")
    assert labels.columns.tolist() == ["id", "source", *PROPERTIES, "train_seconds"]
    assert labels["id"].tolist() == [c.id for c in cands] and (labels["source"] == "test").all()
    assert labels["params"].tolist() == [1000, 1001, 1002] and labels["accuracy_noise"].tolist() == [40.0, 41.0, 42.0]
    assert labels["convergence"].tolist() == [30.0, 31.0, 32.0] and labels["inference_ms"].tolist() == [1.5, 2.5, 3.5]


@pytest.mark.slow
def test_rank_ground_truth_labels_from_real_training(tmp_path):
    """Two real ground-truth runs (one epoch on digits): the labels are the trained networks'."""
    from archlab.data import dataset_info

    assert main(["rank", "--split", "test", "--limit", "2", "--methods", "params", "--ground-truth", "--epochs", "1",
                 "--device", "cpu", "--no-progress", "--out", str(tmp_path)]) == 0
    labels = read_labels(tmp_path / "properties.csv")
    ranking = pd.read_csv(tmp_path / "ranking.csv")
    assert np.allclose(labels["accuracy"], ranking["ground_truth"], atol=1e-3)  # ranking.csv: 6 digits
    assert labels[["accuracy", "accuracy_noise", "convergence"]].stack().between(0, 100).all()
    assert (labels["inference_ms"] > 0).all() and (labels["train_seconds"] > 0).all()
    info = dataset_info("digits")
    sizes = [sum(p.numel() for p in c.build(info.num_classes, info.image_size).parameters())
             for c in from_split("test", limit=2)]
    assert labels["params"].tolist() == sizes
