"""``archlab demo``: train, evaluate and predict end to end on the embedded digits data."""

from __future__ import annotations

import argparse

from archlab.cli._args import add_examples


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="output folder (re-running resumes there)")
    p.add_argument("--minutes", type=float, default=2.5, help="GHN-2 training budget in minutes (2.5)")
    p.add_argument("--mlp-minutes", type=float, default=0.5, help="MLP-GHN baseline training budget (0.5)")
    p.add_argument("--archs", type=int, default=50, help="held-out test architectures to evaluate")
    p.add_argument("--model", default="resnet18", help="torchvision model whose parameters to predict")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--ref-size", type=int, default=1000,
                   help="DeepNets-1M train architectures in the shift stage's reference set (1000)")
    p.add_argument("--rank-archs", type=int, default=30, help="test architectures the ranking stage ranks (30)")
    p.add_argument("--rank-epochs", type=int, default=1, help="ground-truth epochs per ranked architecture (1)")
    p.add_argument("--ft-steps", type=int, default=10, help="fine-tuning steps of ghn-ft/random-ft (10)")
    p.add_argument("--search-trials", type=int, default=8, help="trials of the search stage (8)")
    p.add_argument("--seed", type=int, default=0)
    add_examples(p, "archlab demo", "archlab demo --minutes 10 --archs 100 --model resnet50 --out runs/demo50")


def run(args: argparse.Namespace) -> int:
    from archlab.cli._args import check_at_least, check_output_dir
    from archlab.report._demo import DemoConfig, run_demo

    check_output_dir(args.out)
    check_at_least(args, 1, "rank_epochs", "ft_steps", "search_trials")
    check_at_least(args, 2, "rank_archs")
    run_demo(DemoConfig(out=args.out, minutes=args.minutes, mlp_minutes=args.mlp_minutes,
                        archs=args.archs, model=args.model, device=args.device, seed=args.seed,
                        ref_size=args.ref_size, rank_archs=args.rank_archs, rank_epochs=args.rank_epochs,
                        ft_steps=args.ft_steps, search_trials=args.search_trials))
    return 0
