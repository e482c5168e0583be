"""``archlab graph``: build and summarise an architecture graph."""

from __future__ import annotations

import argparse

from archlab.cli._args import add_examples


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="torchvision model name or path/to/file.py:ClassName")
    p.add_argument("--input-size", metavar="CxHxW",
                   help="input size as CxHxW, HxW or N (default: the model's native size)")
    p.add_argument("--num-classes", type=int, default=None,
                   help="classifier outputs (default: model default)")
    p.add_argument("--strict", action="store_true", help="fail on fallback-typed or unused parameters")
    p.add_argument("--mode", choices=["ghn2", "ghn3"], default="ghn2",
                   help="graph conventions of the published GHN-2 (default) or GHN-3 code")
    p.add_argument("--json", metavar="FILE", help="write the graph as JSON")
    p.add_argument("--plot", metavar="FILE", help="draw the graph (PNG/PDF/SVG)")
    p.add_argument("--zoo", action="store_true", help="coverage table over the torchvision zoo")
    p.add_argument("--filter", default="*", help="with --zoo: glob over model names (e.g. 'resnet*')")
    add_examples(p, "archlab graph resnet50 --plot resnet50.png --json resnet50.json",
                 "archlab graph my_net.py:Net --input-size 3x32x32 --strict")


def run(args: argparse.Namespace) -> int:
    from archlab._io import atomic_write_text
    from archlab.cli import UsageError
    from archlab.cli._args import check_at_least, check_input_size, check_output_file
    from archlab.graph import build_graph, plot_graph, resolve_model
    from archlab.plots import check_image_path

    if args.zoo:
        return _zoo(args.filter)
    if not args.model:
        raise UsageError("give a MODEL (torchvision name or file.py:ClassName) or --zoo")
    check_at_least(args, 1, "num_classes")
    check_input_size(args.input_size)
    if args.json:
        check_output_file(args.json, "--json")
    if args.plot:
        check_image_path(args.plot)
    model = resolve_model(args.model, num_classes=args.num_classes)
    g = build_graph(model, input_size=args.input_size, strict=args.strict, mode=args.mode)
    print(summary(args.model, g))
    if args.json:
        atomic_write_text(g.to_json(), args.json)
        print(f"graph written to {args.json}")
    if args.plot:
        plot_graph(g, args.plot, title=f"{args.model}: {g.num_nodes} nodes, {g.num_edges} edges")
        print(f"plot written to {args.plot}")
    return 0


def summary(name: str, g) -> str:
    """Human-readable summary of a graph."""
    lines = [
        f"{name}  input {'x'.join(map(str, g.input_size))}  traced on {g.meta.get('traced_on')} ({g.meta.get('mode')} mode)",
        f"  nodes {g.num_nodes}   edges {g.num_edges}   parameters {g.num_params:,}   coverage {g.coverage:.4f}",
        "  nodes by type: " + ", ".join(f"{k} {v}" for k, v in sorted(g.op_counts().items(), key=lambda kv: -kv[1])),
        f"  fallbacks: {len(g.fallbacks) or 'none'}",
    ]
    lines += [f"    {f.param}: {f.reason} -> typed {f.op}" for f in g.fallbacks[:20]]
    if g.unused:
        lines.append(f"  unused trainable parameters: {', '.join(g.unused[:20])}")
    return "\n".join(lines)


def _zoo(pattern: str) -> int:
    from tqdm import tqdm

    from archlab.graph import zoo_coverage, zoo_models

    names = zoo_models(pattern)
    if not names:
        from archlab.cli import UsageError

        raise UsageError(f"no torchvision model matches {pattern!r}")
    rows = []
    for row in tqdm(zoo_coverage(names), total=len(names), desc="zoo", unit="model"):
        rows.append(row)
    print(f"{'model':24s} {'nodes':>6s} {'edges':>6s} {'params':>13s} {'coverage':>8s} {'fallbk':>6s} {'build s':>8s}")
    for r in rows:
        if r.error:
            print(f"{r.model:24s} ERROR {r.error}")
        else:
            print(f"{r.model:24s} {r.nodes:6d} {r.edges:6d} {r.params:13,d} {r.coverage:8.4f} {r.fallbacks:6d} {r.build_s:8.3f}")
    ok = [r for r in rows if not r.error and r.coverage == 1.0]
    print(f"{len(ok)}/{len(rows)} models with coverage 1.0")
    return 0 if len(ok) == len(rows) else 1
