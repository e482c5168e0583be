"""archlab.space: genotypes, sampling, splits, storage, analytic statistics (no torch needed)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

import archlab.space as S
from archlab.space._storage import dumps_record, split_path


def _g(**kw):
    base = dict(normal=(("sep_conv_3x3", 0), ("skip_connect", 1)), normal_concat=(2,),
                reduce=(("max_pool_3x3", 0), ("avg_pool_3x3", 1)), reduce_concat=(2,))
    base.update(kw)
    return S.Genotype(**base)


def test_genotype_round_trip_and_hash():
    g = _g(n_cells=5, ks=7, stem_type=1)
    d = json.loads(json.dumps(g.to_dict()))
    g2 = S.Genotype.from_dict(d)
    assert g2 == g and g2.hash == g.hash and len(g.hash) == 40
    assert _g(n_cells=6).hash != g.hash
    assert hash(g) == hash(g2)  # usable in sets


@pytest.mark.parametrize("kw, msg", [
    (dict(normal=(("conv_9x9", 0), ("skip_connect", 1))), "unknown op 'conv_9x9'"),
    (dict(normal=(("conv_3x3", 0), ("skip_connect", 2))), "input must be in"),
    (dict(normal_concat=(5,)), "normal_concat"),
    (dict(norm="ln"), "norm must be one of"),
    (dict(preproc=False, C_mult=2), "preproc=False"),
])
def test_genotype_validation_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        _g(**kw)
    with pytest.raises(ValueError, match="unknown genotype keys"):
        S.Genotype.from_dict({**_g().to_dict(), "C": 32})


def test_sample_genotype_is_deterministic_and_follows_split_rules():
    a = [S.sample_genotype(np.random.Generator(np.random.PCG64(7)), "deep") for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.Generator(np.random.PCG64(3))
    for _ in range(30):
        g = S.sample_genotype(rng, "train")
        assert 4 <= g.n_cells <= 18 and 1 <= g.steps <= 4 and g.ks in (3, 5, 7)
        for cell in (g.normal, g.reduce):
            assert sum(op == "cse" for op, _ in cell) <= 1
            assert sum(op in ("conv_5x5", "conv_7x7") for op, _ in cell) <= 1
        assert any(("conv" in op) or op in ("msa", "cse") for op, _ in g.normal + g.reduce)
    with pytest.raises(ValueError, match="unknown|no genotype sampler"):
        S.sample_genotype(rng, "tset")


def test_split_ranges():
    for rec in S.generate_split("deep", n=30):
        assert 10 <= rec["genotype"]["n_cells"] <= 36
    for rec in S.generate_split("dense", n=30):
        assert 2 <= len(rec["genotype"]["normal"]) // 2 <= 10
    assert all(r["genotype"]["norm"] == "none" for r in S.generate_split("bnfree", n=30))
    for rec in S.generate_split("search", n=30):
        assert rec["genotype"]["norm"] == "bn" and 6 <= rec["genotype"]["n_cells"] <= 20
    wide = list(S.generate_split("wide", n=5))
    test = list(S.generate_split("test", n=5))
    assert [w["hash"] for w in wide] == [t["hash"] for t in test]
    assert wide[0]["meta"]["C"] == 128 and wide[0]["meta"]["params"] > test[0]["meta"]["params"]
    with pytest.raises(ValueError, match="unknown split 'tset'"):
        next(S.generate_split("tset"))
    with pytest.raises(ValueError, match="build_predefined"):
        next(S.generate_split("predefined"))


def test_splits_disjoint_and_unique():
    val = {r["hash"] for r in S.generate_split("val")}
    test = {r["hash"] for r in S.generate_split("test")}
    assert len(val) == 500 and len(test) == 500 and not val & test
    for split in ("deep", "dense", "bnfree"):
        hs = [r["hash"] for r in S.generate_split(split)]
        assert len(set(hs)) == len(hs) == 100 and not set(hs) & (val | test)
    train = [r["hash"] for r in S.generate_split("train", n=1000)]
    assert not set(train) & (val | test)


def test_shipped_eval_splits_match_generator():
    for split in S.EVAL_SPLITS:
        path = split_path(split)
        with open(path) as f:
            head = [line.rstrip("\n") for line in itertools.islice(f, 25)]
        fresh = [dumps_record(r) for r in S.generate_split(split, n=25)]
        assert head == fresh, f"{path} differs from the generator; regenerate (see datasets/deepnets1m/README.md)"
        assert len(S.load_split(split)) == S.SPLITS[split]["n"]


def test_determinism_across_processes():
    code = ("import archlab.space as S, sys; "
            "print(','.join(r['hash'] for r in S.generate_split('train', n=40, seed=11))); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == ",".join(r["hash"] for r in S.generate_split("train", n=40, seed=11))
    assert out[1] == "False", "archlab.space imported torch"


def test_prefix_train_stream_and_workers():
    short = [r["hash"] for r in S.generate_split("train", n=30, seed=5)]
    stream = [g.hash for g in itertools.islice(S.train_stream(seed=5), 30)]
    assert short == stream
    one = list(S.generate_split("train", n=1030, seed=5))
    two = list(S.generate_split("train", n=1030, seed=5, workers=2))
    assert one == two and [r["id"] for r in one] == list(range(1030))
    assert [r["hash"] for r in one[:30]] == short


def test_population_statistics_match_reference():
    """Reference DeepNets-1M TRAIN (1,500 archs, C=32, CIFAR): 19-635 nodes (178 +- 88),
    0.02-9.7M params (1.04 +- 1.34M). Ours must be within ~20% (std within 25%)."""
    meta = [r["meta"] for r in S.generate_split("train", n=300)]
    nodes = np.array([m["num_nodes"] for m in meta])
    params = np.array([m["params"] for m in meta]) / 1e6
    assert abs(nodes.mean() - 178) / 178 < 0.2 and abs(nodes.std() - 88) / 88 < 0.25
    assert abs(params.mean() - 1.04) / 1.04 < 0.2 and abs(params.std() - 1.34) / 1.34 < 0.25
    assert nodes.min() >= 15 and nodes.max() <= 700 and params.max() <= 10.0


def test_analytic_stats_keys_and_invalid_genotypes():
    st = S.analytic_stats(_g(n_cells=4))
    assert set(st) == {"params", "flops", "nodes", "num_nodes", "n_cells"}
    assert st["num_nodes"] == sum(st["nodes"].values()) and st["nodes"]["input"] == 1
    # node 2 only fed by 'none' ops -> no cell output
    bad = _g(normal=(("none", 0), ("none", 1), ("conv_3x3", 0), ("conv_3x3", 1)), normal_concat=(2,),
             reduce=(("none", 0), ("none", 1), ("conv_3x3", 0), ("conv_3x3", 1)), reduce_concat=(2, 3))
    with pytest.raises(S.InvalidGenotype, match="no output"):
        S.analytic_stats(bad)
    with pytest.raises(ValueError, match="unknown input 'mnist'"):
        S.analytic_stats(_g(), input="mnist")


def test_storage_round_trip(tmp_path):
    recs = list(S.generate_split("val", n=15))
    for name in ("a.jsonl", "b.jsonl.gz"):
        path = tmp_path / "sub" / name
        assert S.write_split(iter(recs), path) == 15
        assert list(S.read_split(path)) == recs
        assert [g.hash for g in S.read_genotypes(path)] == [r["hash"] for r in recs]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["a.jsonl", "b.jsonl.gz"]
    # byte-identical rewrite (gzip has no timestamp)
    first = (tmp_path / "sub" / "b.jsonl.gz").read_bytes()
    S.write_split(recs, tmp_path / "sub" / "b.jsonl.gz")
    assert (tmp_path / "sub" / "b.jsonl.gz").read_bytes() == first
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        next(S.read_split(tmp_path / "nope.jsonl"))
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        S.load_split("val", root=tmp_path)
