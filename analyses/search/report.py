"""Tables, verdict and figures of the search study, from the runs' results (plain dicts/frames)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from archlab.analysis import ranking_metrics
from archlab.plots import pyplot, save_figure

COLORS = {"ghn-ft": "C0", "random-ft": "C1", "random": "C2"}
RUN_COLUMNS = ["method", "seed", "budget_cpu_s", "cpu_s", "wall_s", "search_cpu_s", "candidates_scored",
               "pruned", "full_trainings", "candidates_per_hour", "best_proxy_id", "best_proxy_top1",
               "best_trained_id", "best_trained_top1"]


def runs_frame(results: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{k: r[k] for k in RUN_COLUMNS} for r in results], columns=RUN_COLUMNS)


def retrained_frame(results: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [{"method": r["method"], "seed": r["seed"], **f} for r in results for f in r["retrained"]]
    cols = ["method", "seed", "rank", "id", "proxy", "trained", "params", "cpu_s", "wall_s", "cpu_at"]
    return pd.DataFrame(rows, columns=cols)


def taus(retrained: pd.DataFrame, random_proxies: pd.DataFrame | None) -> pd.DataFrame:
    """Kendall τ / Spearman ρ of each proxy against full training: on its own finalists (pooled
    over seeds; the target's number), and on the random method's architectures when given."""
    rows = []
    for proxy, part in retrained.groupby("method"):
        rows.append({"proxy": proxy, "set": "finalists (retrained, pooled over seeds)",
                     **_metrics(part["proxy"], part["trained"])})
    if random_proxies is not None and len(random_proxies):
        for proxy in ("ghn", "ghn-ft", "random-ft"):
            rows.append({"proxy": proxy, "set": "random-search architectures (outside budget)",
                         **_metrics(random_proxies[proxy], random_proxies["trained"])})
    return pd.DataFrame(rows, columns=["proxy", "set", "n", "kendall_tau", "spearman_rho"])


def _metrics(scores: pd.Series, truth: pd.Series) -> dict[str, float]:
    m = ranking_metrics(scores.to_numpy(float), truth.to_numpy(float), k=min(3, len(scores)))
    return {"n": int(m["n"]), "kendall_tau": m["kendall_tau"], "spearman_rho": m["spearman_rho"]}


def method_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds per method."""
    g = runs.groupby("method", sort=False)
    out = pd.DataFrame({
        "seeds": g.size(),
        "best_trained_mean": g["best_trained_top1"].mean(), "best_trained_std": g["best_trained_top1"].std(ddof=1),
        "candidates_per_hour": g["candidates_per_hour"].mean(), "candidates_scored": g["candidates_scored"].mean(),
        "full_trainings": g["full_trainings"].mean(), "cpu_s": g["cpu_s"].mean(), "wall_s": g["wall_s"].mean(),
    })
    return out.reset_index()


def verdict(runs: pd.DataFrame) -> tuple[bool | None, str]:
    """Whether ghn-ft's mean best fully-trained accuracy is at least each other method's."""
    means = runs.groupby("method")["best_trained_top1"].mean()
    if "ghn-ft" not in means or len(means) < 2:
        return None, "not decided: the run lacks ghn-ft or a method to compare with"
    others = [m for m in ("random", "random-ft") if m in means]
    holds = all(means["ghn-ft"] >= means[m] for m in others)
    parts = []
    for m in others:
        wins = _per_seed_wins(runs, m)
        parts.append(f"ghn-ft {means['ghn-ft']:.2f}% vs {m} {means[m]:.2f}% (ghn-ft ≥ {m} in {wins})")
    return holds, ("**holds**: " if holds else "**does not hold**: ") + "; ".join(parts)


def _per_seed_wins(runs: pd.DataFrame, other: str) -> str:
    a = runs[runs.method == "ghn-ft"].set_index("seed")["best_trained_top1"]
    b = runs[runs.method == other].set_index("seed")["best_trained_top1"]
    seeds = a.index.intersection(b.index)
    return f"{int((a[seeds] >= b[seeds]).sum())} of {len(seeds)} seeds"


def summary_md(runs: pd.DataFrame, tau: pd.DataFrame, cfg: Any) -> str:
    table = method_table(runs)
    _, text = verdict(runs)
    lines = [f"# Search study: {cfg.budget_s:g} CPU s per run, full training {cfg.epochs} epochs, "
             f"proxies {cfg.ft_steps} steps, ghn-ft post-processing {cfg.ft_post}, reserve {cfg.reserve:g}", "",
             "| method | seeds | best fully-trained top-1 % (mean ± std) | candidates / CPU hour | "
             "candidates scored | full trainings | CPU s | wall s |", "|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.method} | {r.seeds} | {r.best_trained_mean:.2f} ± {_f(r.best_trained_std)} | "
                     f"{r.candidates_per_hour:,.0f} | {r.candidates_scored:.1f} | {r.full_trainings:.1f} | "
                     f"{r.cpu_s:.0f} | {r.wall_s:.0f} |")
    lines += ["", f"Target (ghn-ft ≥ random and ≥ random-ft, mean over seeds): {text}", "",
              "## Per run", "", "| method | seed | best trained % | id | best proxy % | candidates | "
              "full trainings | CPU s |", "|---|---|---|---|---|---|---|---|"]
    for r in runs.itertuples():
        lines.append(f"| {r.method} | {r.seed} | {_f(r.best_trained_top1)} | {r.best_trained_id} | "
                     f"{_f(r.best_proxy_top1)} | {r.candidates_scored} | {r.full_trainings} | {r.cpu_s:.0f} |")
    lines += ["", "## Proxy against full training (Kendall τ)", "", "| proxy | set | n | Kendall τ | Spearman ρ |",
              "|---|---|---|---|---|"]
    lines += [f"| {r.proxy} | {r.set} | {r.n} | {_f(r.kendall_tau, 3)} | {_f(r.spearman_rho, 3)} |"
              for r in tau.itertuples()]
    return "\n".join(lines) + "\n"


def _f(v: Any, digits: int = 2) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def plot_best(results: list[dict[str, Any]], runs: pd.DataFrame, path: Path, title: str) -> Path:
    """Left: best-so-far fully-trained top-1 against CPU seconds, one line per run; right: the
    final value per method (mean ± std over seeds, seeds as dots)."""
    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    for r in results:
        if r["curve"]:
            x, y = zip(*r["curve"])
            ax.step(x, y, where="post", color=COLORS[r["method"]], alpha=0.8,
                    label=r["method"] if r["seed"] == min(q["seed"] for q in results) else None)
            ax.plot(x[-1], y[-1], "o", color=COLORS[r["method"]], ms=3)
    ax.axvline(results[0]["budget_cpu_s"], color="k", ls="--", lw=1, label="budget")
    ax.set_xlabel("CPU seconds (one core)")
    ax.set_ylabel("best fully-trained top-1 so far (%)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    table = method_table(runs)
    xs = np.arange(len(table))
    bx.bar(xs, table["best_trained_mean"], yerr=table["best_trained_std"].fillna(0), capsize=6,
           color=[COLORS[m] for m in table["method"]], alpha=0.7)
    for i, m in enumerate(table["method"]):
        vals = runs.loc[runs.method == m, "best_trained_top1"]
        bx.plot(np.full(len(vals), i), vals, "k.", ms=6)
    bx.set_xticks(xs, table["method"])
    lo = float(runs["best_trained_top1"].min())
    bx.set_ylim(max(0.0, lo - 5), min(100.0, float(runs["best_trained_top1"].max()) + 2))
    bx.set_ylabel("best fully-trained top-1 (%): mean ± std")
    bx.grid(alpha=0.3, axis="y")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_scatter(retrained: pd.DataFrame, random_proxies: pd.DataFrame | None, tau: pd.DataFrame,
                 path: Path, title: str) -> Path:
    """Proxy top-1 against fully-trained top-1, one panel per proxy: its finalists (filled) and,
    when given, the random method's architectures (hollow)."""
    plt = pyplot()
    proxies = [p for p in ("ghn-ft", "random-ft") if p in set(retrained["method"])] or ["ghn-ft"]
    fig, axes = plt.subplots(1, len(proxies), figsize=(5 * len(proxies), 4), squeeze=False)
    for ax, proxy in zip(axes[0], proxies):
        if random_proxies is not None and len(random_proxies):
            t = _tau_of(tau, proxy, "random")
            ax.scatter(random_proxies[proxy], random_proxies["trained"], facecolors="none", edgecolors="0.5",
                       s=20, label=f"random-search archs (τ {t})")
        part = retrained[retrained.method == proxy]
        ax.scatter(part["proxy"], part["trained"], color=COLORS[proxy], s=24,
                   label=f"{proxy} finalists (τ {_tau_of(tau, proxy, 'finalists')})")
        ax.set_xlabel(f"{proxy} proxy top-1 (%, val)")
        ax.set_ylabel("fully-trained top-1 (%, test)")
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def _tau_of(tau: pd.DataFrame, proxy: str, prefix: str) -> str:
    row = tau[(tau.proxy == proxy) & tau.set.str.startswith(prefix)]
    return "–" if row.empty else f"{_f(row.kendall_tau.iloc[0], 2)}, n={row.n.iloc[0]}"
