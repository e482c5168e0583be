"""Why fine-tuning from GHN-predicted parameters stalls: layer similarity and feature rank.

    python analyses/init_diversity/run.py --ckpt GHN.pt [--archs 16] [--ft-steps 20]
        [--eps 0.1,0.3,1,3] [--inits random,ghn,...] [--truth RANKING.csv] [--lr 0.025] [--seed 0] [--out DIR]

For the first ``--archs`` DeepNets-1M test-split architectures on the embedded digits data, builds
each network with every initialisation — its default (``random``), the GHN's predicted parameters
(``ghn``), predicted plus ``noise`` post-processing at each ``--eps``, predicted plus ``orth``
(:func:`archlab.engine.postprocess`), and as the control for ``orth``, the default init
orthogonalised the same way (``random+orth``) — and measures, before any training:

- ``layer_cosine``: mean cosine similarity between the weights of conv/linear layers of the same
  shape (all pairs, the classifier excluded; default init: about 0);
- ``feature_rank``: effective rank, (Σσ)²/Σσ², of the centred features entering the classifier
  on 128 training images (how many directions the network's representation spans);

then fine-tunes it for ``--ft-steps`` SGD steps exactly as the ``ghn-ft`` / ``random-ft`` proxies
do (same data order) and records top-1 on the validation split before and after, and the training
loss. With ``--truth`` (a CSV with ``id`` and ``ground_truth`` columns, e.g. the ranking study's
``ranking.csv``), also Kendall τ of each init's fine-tuned top-1 against that ground truth: how well
the ``ghn-ft``-style proxy with that init ranks the architectures. ``--inits`` picks a subset.
Writes ``DIR/diversity.csv`` (one row per architecture and init), ``DIR/summary.md`` (means),
``DIR/diversity.png`` and ``DIR/manifest.json`` (default DIR: this study's ``results/``).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # analyses/: the shared manifest helper

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from _manifest import provenance, write_manifest  # noqa: E402
from torch import nn  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from archlab._io import atomic_write_text  # noqa: E402
from archlab.engine import from_split, postprocess, proxy_data, short_finetune, weight_layers  # noqa: E402
from archlab.engine._common import seed_everything  # noqa: E402
from archlab.ghn import CheckpointError, fingerprint, load_ghn, use_batch_stats  # noqa: E402

COLUMNS = ["id", "init", "layer_cosine", "feature_rank", "feature_dim", "top1_init", "top1_ft", "train_loss"]


def layer_cosine(model: nn.Module) -> float:
    """Mean pairwise cosine similarity of same-shaped conv/linear weights (classifier excluded)."""
    groups: dict[tuple[int, ...], list[torch.Tensor]] = defaultdict(list)
    for _, module in weight_layers(model)[:-1]:
        groups[tuple(module.weight.shape)].append(module.weight.detach().flatten().float())
    total, pairs = 0.0, 0
    for ws in groups.values():
        n = len(ws)
        if n > 1:
            v = F.normalize(torch.stack(ws), dim=1)
            total += float((v @ v.T).sum() - n)
            pairs += n * (n - 1)
    return total / pairs if pairs else float("nan")


def feature_rank(model: nn.Module, images: torch.Tensor) -> tuple[float, int]:
    """Effective rank of the centred classifier inputs on ``images``, and their dimension."""
    head = getattr(model, "classifier", None)
    head = weight_layers(model)[-1][1] if head is None else head
    seen: list[torch.Tensor] = []
    handle = head.register_forward_hook(lambda mod, inputs, out: seen.append(inputs[0].detach()))
    try:
        use_batch_stats(model)
        model.train()
        with torch.no_grad():
            model(images)
    finally:
        handle.remove()
    f = seen[0].flatten(1).double()
    s = torch.linalg.svdvals(f - f.mean(0))
    return (float(s.sum() ** 2 / (s ** 2).sum()) if s.sum() > 0 else 0.0), f.shape[1]


def initialise(cand, init: str, ghn, data, seed: int) -> nn.Module:
    """``cand`` built from ``seed`` with init ``random``, ``random+orth``, ``ghn``, ``noise:<eps>``
    (predicted, then noise) or ``orth`` (predicted, then orthogonalised)."""
    seed_everything(seed)
    model = cand.build(data.num_classes, data.image_size)
    if init == "random+orth":
        postprocess(model, "orth", seed=seed)
    elif init != "random":
        with torch.no_grad():
            ghn.predict(model)
        method, _, eps = init.partition(":")
        if method in ("noise", "orth"):
            postprocess(model, method, eps=float(eps or 0.1), seed=seed)
    return model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", required=True, help="a GHN checkpoint for 10-class digits")
    p.add_argument("--archs", type=int, default=16, help="test-split architectures (16)")
    p.add_argument("--ft-steps", type=int, default=20, help="fine-tuning steps, as the proxies' K (20)")
    p.add_argument("--eps", default="0.1,0.3,1,3", help="noise levels, relative to each tensor's std")
    p.add_argument("--inits", default=None, help="comma-separated subset of the inits (default: all)")
    p.add_argument("--truth", default=None, help="CSV with id and ground_truth columns: adds Kendall τ")
    p.add_argument("--lr", type=float, default=0.025)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)
    try:
        eps = [float(e) for e in args.eps.split(",") if e.strip()]
    except ValueError:
        p.error(f"--eps must be comma-separated numbers; got {args.eps!r}")
    if args.archs < 1 or args.ft_steps < 0 or any(e <= 0 for e in eps):
        p.error("--archs must be >= 1, --ft-steps >= 0 and every --eps > 0")
    inits = ["random", "random+orth", "ghn", *(f"noise:{e:g}" for e in eps), "orth"]
    if args.inits:
        wanted = [i.strip() for i in args.inits.split(",") if i.strip()]
        unknown = [i for i in wanted if i not in inits and not _is_noise(i)]
        if unknown or not wanted:
            p.error(f"--inits: unknown {unknown or wanted}; choose from {', '.join(inits)} (any noise:<eps>)")
        inits = wanted
    if not Path(args.ckpt).is_file():
        p.error(f"--ckpt {args.ckpt}: no such checkpoint file")
    truth = _read_truth(p, args.truth) if args.truth else None
    info = provenance("init_diversity", args, [args.seed], argv=None if argv is None else [sys.argv[0], *argv])

    import pandas as pd

    try:
        ghn = load_ghn(args.ckpt).eval()
    except CheckpointError as e:
        p.error(str(e))
    data = proxy_data("digits", seed=args.seed)
    images = next(iter(data.train_loader(args.seed)))[0]
    images = torch.cat([images, next(iter(data.train_loader(args.seed + 1)))[0]])[:128]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(ghn)
    earlier = _earlier_run(out)
    rows = reusable_rows(out, args, fp)
    done = {(r["id"], r["init"]) for r in rows}
    if rows:
        print(f"{out}: reusing {len(rows)} rows of the earlier run with these settings", flush=True)
    for cand in tqdm(from_split("test", limit=args.archs), desc="architectures"):
        todo = [init for init in inits if (cand.id, init) not in done]
        for init in todo:
            model = initialise(cand, init, ghn, data, args.seed)
            rank, dim = feature_rank(model, images)
            row = {"id": cand.id, "init": init, "layer_cosine": layer_cosine(model), "feature_rank": rank,
                   "feature_dim": dim}
            seed_everything(args.seed)
            ft = short_finetune(model, data.train_loader(args.seed), data.eval_loader(), args.ft_steps, lr=args.lr)
            rows.append({**row, "top1_init": ft.init_top1, "top1_ft": ft.final_top1, "train_loss": ft.train_loss})
        if todo:  # a killed run continues from here
            atomic_write_text(pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False, float_format="%.4f"),
                              out / "diversity.csv")
    wanted = {(c.id, i) for c in from_split("test", limit=args.archs) for i in inits}
    table = pd.DataFrame([r for r in rows if (r["id"], r["init"]) in wanted], columns=COLUMNS)
    means = table.groupby("init", sort=False)[COLUMNS[2:]].mean()
    md = summary_markdown(means, args)
    if truth is not None:
        md += "\n" + truth_markdown(table, truth, args.truth)
    atomic_write_text(md, out / "summary.md")
    plot(means, out / "diversity.png", args)
    write_manifest(out, info, device="cpu", ghn_fingerprint=fp, rows_reused=len(done),
                   **({"rows_from": earlier} if done and earlier else {}))
    print(md)
    return 0


def _earlier_run(out: Path) -> dict | None:
    """Where the rows of the run before this one in ``out`` came from (its own ``rows_from``, or
    its command, commit and start), for the manifest of a run that keeps them."""
    import json

    path = out / "manifest.json"
    if not path.is_file():
        return None
    m = json.loads(path.read_text())
    return m.get("rows_from") or {k: m.get(k) for k in ("command", "git", "started", "finished")}


def reusable_rows(out: Path, args, fp: str) -> list[dict]:
    """Rows of an earlier run in ``out`` that this run can keep: same checkpoint (its fingerprint,
    or for a manifest without one, a checkpoint file not written after that run started), same
    fine-tuning steps, learning rate and seed; otherwise none (everything is recomputed)."""
    import json
    from datetime import datetime, timezone

    import pandas as pd

    manifest, table = out / "manifest.json", out / "diversity.csv"
    if not (manifest.is_file() and table.is_file()):
        return []
    m = json.loads(manifest.read_text())
    before = m.get("args", {})
    if any(before.get(k) != getattr(args, k) for k in ("ckpt", "ft_steps", "lr", "seed")):
        return []
    if "ghn_fingerprint" in m:
        if m["ghn_fingerprint"] != fp:
            return []
    else:
        started = datetime.fromisoformat(m["started"])
        written = datetime.fromtimestamp(Path(args.ckpt).stat().st_mtime, timezone.utc)
        if written > started:
            return []
    return pd.read_csv(table).to_dict("records")


def summary_markdown(means, args) -> str:
    lines = [f"Means over {args.archs} test-split architectures on digits; fine-tuning: {args.ft_steps} SGD "
             f"steps, lr {args.lr:g} (the ghn-ft/random-ft recipe); GHN: {args.ckpt}.", "",
             "| init | layer cosine | feature rank (of dim) | top-1 at init | top-1 after fine-tuning | train loss |",
             "|---|---|---|---|---|---|"]
    for init, r in means.iterrows():
        lines.append(f"| {init} | {r.layer_cosine:.3f} | {r.feature_rank:.1f} ({r.feature_dim:.0f}) | "
                     f"{r.top1_init:.1f} | {r.top1_ft:.1f} | {r.train_loss:.3f} |")
    return "\n".join(lines) + "\n"


def _is_noise(init: str) -> bool:
    method, _, eps = init.partition(":")
    try:
        return method == "noise" and float(eps) > 0
    except ValueError:
        return False


def _read_truth(p: argparse.ArgumentParser, path: str):
    """The ``--truth`` table, checked before any work: a CSV with ``id`` and ``ground_truth``."""
    import pandas as pd

    if not Path(path).is_file():
        p.error(f"--truth {path}: no such file")
    try:
        truth = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as e:  # pandas' ParserError is a ValueError
        p.error(f"--truth {path}: not a readable CSV ({str(e).splitlines()[0]})")
    if not {"id", "ground_truth"} <= set(truth.columns):
        p.error(f"--truth {path}: needs columns id and ground_truth, has {list(truth.columns)[:8]}")
    return truth


def truth_markdown(table, truth, name: str, baseline: str = "random") -> str:
    """Kendall τ of each init's fine-tuned top-1 against ``truth``'s ``ground_truth`` (by id) and,
    when ``baseline`` was run, each τ minus the baseline's with a paired bootstrap 95% interval."""
    from scipy.stats import kendalltau

    joined = table.merge(truth[["id", "ground_truth"]], on="id").dropna(subset=["ground_truth"])
    wide = joined.pivot_table(index="id", columns="init", values="top1_ft").join(
        joined.groupby("id")["ground_truth"].first())
    lines = [f"Kendall τ of the fine-tuned top-1 against `{name}` (ground truth); Δτ: the init's τ "
             f"minus `{baseline}`'s on the same architectures, with a 95% interval from 2,000 paired "
             "bootstrap resamples of the architectures:", "",
             "| init | Kendall τ | architectures | Δτ vs random [95% interval] |", "|---|---|---|---|"]
    for init in dict.fromkeys(joined["init"]):
        g = wide[[init, "ground_truth"]].dropna()
        tau = kendalltau(g[init], g["ground_truth"]).statistic
        delta = ""
        if baseline in wide.columns and init != baseline:
            d, lo, hi = paired_tau_difference(wide[[init, baseline, "ground_truth"]].dropna(), init, baseline)
            delta = f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"
        lines.append(f"| {init} | {tau:.3f} | {len(g)} | {delta} |")
    return "\n".join(lines) + "\n"


def paired_tau_difference(frame, a: str, b: str, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """τ(a) - τ(b) against ``frame.ground_truth`` and its 2.5/97.5 percentiles over bootstrap
    resamples of the rows (the same rows for both: a paired interval)."""
    import numpy as np
    from scipy.stats import kendalltau

    def diff(rows) -> float:
        t = frame["ground_truth"].to_numpy()[rows]
        return (kendalltau(frame[a].to_numpy()[rows], t).statistic
                - kendalltau(frame[b].to_numpy()[rows], t).statistic)

    n = len(frame)
    rng = np.random.default_rng(seed)
    boot = np.array([diff(rng.integers(0, n, n)) for _ in range(resamples)])
    boot = boot[np.isfinite(boot)]
    lo, hi = (np.percentile(boot, [2.5, 97.5]) if len(boot) else (float("nan"), float("nan")))
    return diff(np.arange(n)), float(lo), float(hi)


def plot(means, path: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(means.index)
    x = range(len(labels))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.bar([i - 0.2 for i in x], means["top1_init"], 0.4, label="at init")
    ax1.bar([i + 0.2 for i in x], means["top1_ft"], 0.4, label=f"after {args.ft_steps} steps")
    if "random" in means.index:
        ax1.axhline(means.loc["random", "top1_ft"], color="grey", ls="--", lw=1, label="random init, fine-tuned")
    ax1.set_ylabel("validation top-1 (%)")
    ax1.legend(fontsize=8)
    ax2.bar(list(x), means["feature_rank"], 0.6, color="tab:green")
    ax2.set_ylabel("effective rank of the classifier's input")
    ax3 = ax2.twinx()
    ax3.plot(list(x), means["layer_cosine"], "o-", color="tab:red")
    ax3.set_ylabel("cosine between same-shaped layers", color="tab:red")
    ax3.set_ylim(-0.05, 1.05)
    for ax in (ax1, ax2):
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, rotation=30, ha="right")
    fig.suptitle(f"GHN-predicted initialisations on {args.archs} DeepNets-1M test architectures (digits)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
