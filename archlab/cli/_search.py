"""``archlab search``: architecture search over DeepNets-1M with Optuna, scored by GHN proxies."""

from __future__ import annotations

import argparse

from archlab.cli._args import add_ckpt, add_examples, add_ft_post, resolve_ckpt

PROXY_CHOICES = ("ghn-ft", "ghn", "random-ft")
UNLIMITED_TRIALS = 10**9


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", required=True, help="study name (created, or joined by more workers)")
    p.add_argument("--storage", default=None,
                   help="journal file, sqlite:///F.db, postgresql://... (default: DIR/study.journal)")
    p.add_argument("--out", required=True,
                   help="search: output folder (journal, trials.csv, plots); --export-top: F.jsonl")
    add_ckpt(p, help="GHN checkpoint that predicts the candidates' parameters")
    p.add_argument("--trials", type=int, help="finished (complete + pruned) trials the study should reach")
    p.add_argument("--cpu-budget", type=float, metavar="SECONDS", default=None,
                   help="stop starting trials once the study's trials have spent this many CPU seconds, "
                        "all workers together (with or instead of --trials; a rerun counts on)")
    p.add_argument("--proxy", default="ghn-ft", choices=PROXY_CHOICES,
                   help="ghn-ft: predicted params + noise, then K steps (default); ghn: predicted "
                        "params, no training; random-ft: default init, K steps")
    p.add_argument("--ft-steps", type=int, default=50, help="K, fine-tuning steps per trial (50)")
    add_ft_post(p)
    p.add_argument("--eval-every", type=int, default=None,
                   help="evaluate (and report to the pruner) every N steps (default: K/5)")
    p.add_argument("--lr", type=float, default=0.025, help="fine-tuning learning rate (0.025)")
    p.add_argument("--sampler", default="tpe", help="tpe (default), random, cmaes, nsga2")
    p.add_argument("--objectives", default="accuracy",
                   help="accuracy, or accuracy,params / accuracy,flops (Pareto front)")
    p.add_argument("--pruner", default=None,
                   help="median (default with one objective), hyperband, none (multi-objective)")
    p.add_argument("--pruner-startup", type=int, default=5,
                   help="trials completed before the median pruner prunes (5)")
    p.add_argument("--seed", type=int, default=0, help="seed of data order, init and sampler (0)")
    p.add_argument("--dataset", default="digits", help="proxy data: digits (default), cifar10, ...")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-eval-images", type=int, default=None,
                   help="score on a fixed subset of N validation images")
    p.add_argument("--heartbeat-interval", type=int, default=10, help="seconds between heartbeats (10)")
    p.add_argument("--grace-period", type=int, default=60,
                   help="a running trial without heartbeat this long (s) is failed and retried (60)")
    p.add_argument("--export-top", type=int, metavar="K", default=None,
                   help="write the K best architectures of an existing study to --out F.jsonl")
    p.add_argument("--retrain-top", type=int, metavar="K", default=None,
                   help="train the K best architectures of an existing study fully (--epochs) into --out DIR")
    p.add_argument("--epochs", type=int, default=10, help="training epochs of --retrain-top (10)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    add_examples(
        p,
        "archlab search --ckpt ghn.pt --study s1 --trials 50 --proxy ghn-ft --ft-steps 50 --out runs/s1",
        "archlab search --ckpt ghn.pt --study s2 --cpu-budget 600 --proxy ghn-ft --out runs/s2",
        "archlab search --study s1 --storage runs/s1/study.journal --export-top 5 --out top.jsonl",
    )


def run(args: argparse.Namespace) -> int:
    from archlab.cli import UsageError
    from archlab.cli._args import check_at_least
    from archlab.search._study import PRUNERS, check_sampler

    check_at_least(args, 1, "trials", "batch_size", "max_eval_images", "eval_every", "heartbeat_interval",
                   "grace_period", "export_top", "retrain_top", "epochs")
    check_at_least(args, 0, "ft_steps", "pruner_startup")
    if args.export_top is not None:
        return _export(args)
    if args.retrain_top is not None:
        return _retrain(args)
    if args.cpu_budget is not None and not args.cpu_budget > 0:
        raise UsageError(f"--cpu-budget must be > 0 seconds, got {args.cpu_budget:g}")
    if args.ckpt is None or (args.trials is None and args.cpu_budget is None):
        raise UsageError("a search needs --ckpt and --trials and/or --cpu-budget "
                         "(or --export-top K to export a study)")
    check_sampler(args.sampler)
    objectives = tuple(o.strip() for o in args.objectives.split(",") if o.strip())
    _check_objectives(objectives)
    pruner = args.pruner or ("median" if len(objectives) == 1 else "none")
    if pruner not in PRUNERS:
        raise UsageError(f"unknown pruner {pruner!r}; choose from {', '.join(PRUNERS)}")
    if len(objectives) > 1 and pruner != "none":
        raise UsageError("pruning needs a single objective (Optuna cannot prune multi-objective "
                         "trials); use --pruner none")
    if args.grace_period <= args.heartbeat_interval:
        raise UsageError(f"--grace-period ({args.grace_period}s) must exceed --heartbeat-interval "
                         f"({args.heartbeat_interval}s)")
    return _search(args, objectives, pruner)


def _check_objectives(objectives: tuple[str, ...]) -> None:
    from archlab.cli import UsageError
    from archlab.search._objective import OBJECTIVES

    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown or "accuracy" not in objectives or len(set(objectives)) != len(objectives):
        raise UsageError(f"--objectives {','.join(objectives)!r}: give accuracy, optionally with params "
                         f"and/or flops (from {', '.join(OBJECTIVES)}), each once")


def _search(args: argparse.Namespace, objectives: tuple[str, ...], pruner_name: str) -> int:
    import logging
    from pathlib import Path

    import optuna

    from archlab._device import resolve_device
    from archlab.cli._args import check_output_dir
    from archlab.engine import proxy_data
    from archlab.engine._evaluate import open_ghn
    from archlab.ghn import fingerprint
    from archlab.search import (
        Objective,
        SearchSettings,
        make_pruner,
        open_storage,
        open_study,
        per_trial_sampler,
        run_worker,
        storage_url,
    )

    out = check_output_dir(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(args.device)
    info = open_storage(storage_url(args.storage, out), args.heartbeat_interval, args.grace_period)
    ghn = open_ghn(resolve_ckpt(args), map_location=dev).eval()
    data = proxy_data(args.dataset, args.data_dir, args.batch_size, args.max_eval_images, args.seed)
    nc = getattr(ghn.config, "num_classes", data.num_classes)
    if nc != data.num_classes:
        from archlab.cli import UsageError

        raise UsageError(f"{args.ckpt} predicts {nc}-class classifiers but {args.dataset} has "
                         f"{data.num_classes} classes")
    eval_every = args.eval_every or max(1, args.ft_steps // 5)
    n_trials = args.trials if args.trials is not None else UNLIMITED_TRIALS  # the CPU budget ends it
    settings = SearchSettings(proxy=args.proxy, ft_steps=args.ft_steps, objectives=objectives,
                              dataset=args.dataset, seed=args.seed, lr=args.lr, eval_every=eval_every,
                              n_trials=n_trials, heartbeat_interval=args.heartbeat_interval, post=args.ft_post,
                              device=str(dev))
    optuna.logging.set_verbosity(logging.WARNING)
    study = open_study(info, args.study, objectives, per_trial_sampler(args.sampler, args.seed),
                       make_pruner(pruner_name, args.ft_steps, args.pruner_startup), fingerprint(ghn),
                       settings.scored_as())
    if "ckpt" not in study.user_attrs:
        study.set_user_attr("ckpt", str(Path(args.ckpt).resolve()))
    _print_where(args, info, objectives)
    journal = info.kind == "journal"
    ran = run_worker(study, Objective(ghn, data, settings, journal), n_trials, args.grace_period,
                     journal, on_trial=_trial_line(args.trials, objectives), cpu_budget_s=args.cpu_budget)
    _finish(study, out, objectives, ran)
    return 0


def _print_where(args: argparse.Namespace, info, objectives) -> None:
    target = " and ".join(t for t in (args.trials and f"{args.trials} trials",
                                      args.cpu_budget and f"{args.cpu_budget:g} CPU seconds") if t)
    limits = "".join(f" --{k} {v:g}" for k, v in (("trials", args.trials), ("cpu-budget", args.cpu_budget))
                     if v is not None)
    print(f"study {args.study!r} in {info.display} ({info.kind} storage); objectives "
          f"{', '.join(objectives)}; proxy {args.proxy}, {args.ft_steps} steps; until {target}")
    print(f"  more workers: archlab search --ckpt {args.ckpt} --study {args.study} --storage {info.display}"
          f"{limits} --proxy {args.proxy} --ft-steps {args.ft_steps}"
          f"{'' if args.ft_post == 'noise' else ' --ft-post ' + args.ft_post} --out {args.out}")
    print(f"  dashboard:    optuna-dashboard {info.display}", flush=True)


def _trial_line(n_trials: int | None, objectives: tuple[str, ...]):
    from optuna.trial import TrialState

    def on_trial(study, t) -> None:
        finished = sum(s.state in (TrialState.COMPLETE, TrialState.PRUNED) for s in study.get_trials(deepcopy=False))
        a = t.user_attrs
        if t.state == TrialState.COMPLETE:
            vals = ", ".join(f"{o} {v:.4g}" for o, v in zip(objectives, t.values))
        else:
            vals = "surplus (another worker took the last slot)" if a.get("surplus") else ""
        extra = f" cached from trial {a['cached_from']}" if "cached_from" in a else ""
        extra += f" retry of trial {a['retry_of']}" if "retry_of" in a else ""
        print(f"trial {t.number:>4} {t.state.name:<8} {vals:<36} {a.get('candidate_id', ''):<20} "
              f"params {a.get('params', 0):>9,}{extra}  [{finished}/{n_trials or '-'} finished]", flush=True)

    return on_trial


def _finish(study, out, objectives: tuple[str, ...], ran: int) -> None:
    from archlab._io import atomic_write_text
    from archlab.search import plot_history, plot_pareto, top_trials, trials_table

    table = trials_table(study)
    atomic_write_text(table.to_csv(index=False), out / "trials.csv")
    plot_history(table, out / "history.png", title=f"study {study.study_name}")
    written = [out / "trials.csv", out / "history.png"]
    for cost in objectives[1:]:
        written.append(plot_pareto(table, cost, out / f"pareto_{cost}.png",
                                   title=f"study {study.study_name}: accuracy vs {cost}"))
    states = table["state"].value_counts().to_dict()
    print(f"this worker ran {ran} trials; study: " + ", ".join(f"{v} {k.lower()}" for k, v in sorted(states.items())))
    k = objectives.index("accuracy")
    for t in top_trials(study, 3):
        print(f"  best: trial {t.number} {t.user_attrs['candidate_id']} accuracy {t.values[k]:.2f}% "
              f"params {t.user_attrs['params']:,}")
    print("wrote " + ", ".join(str(p) for p in written))


def _export(args: argparse.Namespace) -> int:
    from archlab.cli import UsageError
    from archlab.cli._args import check_output_file
    from archlab.search import export_top, load_existing, open_storage

    if args.storage is None:
        raise UsageError("--export-top needs --storage (the study's journal file or database URL)")
    if not args.out.endswith((".jsonl", ".jsonl.gz")):
        raise UsageError(f"--out {args.out!r}: the export is JSON Lines; name it *.jsonl")
    check_output_file(args.out, "--out", {"--storage": args.storage})
    info = open_storage(args.storage, args.heartbeat_interval, args.grace_period, create=False)
    study = load_existing(info, args.study)
    n = export_top(study, args.export_top, args.out)
    print(f"wrote the {n} best architectures of study {args.study!r} to {args.out}; evaluate them with "
          f"archlab evaluate --ckpt CKPT --genotypes {args.out}")
    return 0


def _retrain(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archlab._device import resolve_device
    from archlab._io import atomic_write_text
    from archlab.analysis import GroundTruthSpec
    from archlab.cli import UsageError
    from archlab.cli._args import check_output_dir
    from archlab.search import load_existing, open_storage
    from archlab.search._retrain import retrain_top

    if args.storage is None:
        raise UsageError("--retrain-top needs --storage (the study's journal file or database URL)")
    check_output_dir(args.out)
    info = open_storage(args.storage, args.heartbeat_interval, args.grace_period, create=False)
    study = load_existing(info, args.study)
    spec = GroundTruthSpec(dataset=args.dataset, epochs=args.epochs, seed=args.seed)
    table, m = retrain_top(study, args.retrain_top, args.out, spec, args.data_dir, resolve_device(args.device))
    out = Path(args.out) / "retrained.csv"
    atomic_write_text(table.to_csv(index=False, float_format="%.4f"), out)
    for r in table.to_dict("records"):
        print(f"  {r['id']:<22} proxy {r['proxy']:6.2f}%  trained {args.epochs} epochs {r['trained']:6.2f}%")
    print(f"proxy against full training over {len(table)} finalists: Kendall tau {m['kendall_tau']:.3f}, "
          f"Spearman {m['spearman_rho']:.3f}; best trained {table['trained'].max():.2f}% -> {out}")
    return 0
