"""The ``archlab`` command: a thin shell over the Python API.

Each verb lives in its own module ``archlab.cli._<verb>`` exposing
``configure(parser)`` and ``run(args) -> int``. Verb modules are imported only when their verb
runs, so ``archlab --help`` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from archlab.errors import ArchlabError, UsageError  # noqa: F401  (UsageError: the verbs' import)

VERBS: dict[str, str] = {
    "graph": "Build an architecture graph for a torchvision model or file.py:ClassName",
    "generate": "Generate a DeepNets-1M-style architecture split as JSON Lines",
    "train": "Train a GHN (GHN-2, GHN-3 or MLP baseline)",
    "evaluate": "Accuracy of networks with GHN-predicted parameters, with baselines",
    "predict": "Predict all parameters of a model with a GHN and save them",
    "finetune": "Fine-tune a model from GHN-predicted (or random) parameters",
    "embed": "Graph embeddings of architectures from a GHN, as Parquet (id, source, embedding, metadata)",
    "rank": "Rank candidate architectures by GHN-based and zero-cost predictors, against ground truth",
    "map": "A 2-D map (UMAP or PCA) of embedding files, as PNG or self-contained HTML",
    "properties": "Regress trained accuracy, noise robustness, inference time, convergence and size from graph embeddings (Kendall τ)",
    "shift": "How far architectures are from the GHN's training distribution (calibrated percentiles)",
    "search": "Architecture search over DeepNets-1M with Optuna, scored by short fine-tunes from GHN-predicted parameters",
    "demo": "Run the main job end to end on the embedded digits data (offline)",
}




def _verb_module(verb: str):
    return importlib.import_module(f"archlab.cli._{verb}")


def build_parser(verbs: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archlab",
        description="Neural-architecture analysis and search with Graph HyperNetworks.",
    )
    from archlab import __version__

    parser.add_argument("--version", action="version", version=f"archlab {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, help_text in VERBS.items():
        p = sub.add_parser(verb, help=help_text, description=help_text)
        if verbs is not None and verb in verbs:
            _verb_module(verb).configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``archlab`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if not a.startswith("-")), None)
    if verb is not None and verb not in VERBS:
        print(f"archlab: error: unknown verb {verb!r}; choose from {', '.join(VERBS)}", file=sys.stderr)
        return 2
    parser = build_parser([verb] if verb else [])
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 0
    try:
        return int(_verb_module(args.verb).run(args) or 0)
    except ArchlabError as e:
        print(f"archlab {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"archlab {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
