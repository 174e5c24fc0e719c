"""``findings``: the paper's three findings on a cached series (sizes x checkpoints), with intervals and p."""

from __future__ import annotations

import argparse
from pathlib import Path

from taskspace_core.results import load_series
from taskspace_core.series_findings import series_findings
from taskspace_core.store import Store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "findings", help="test generalisation by size, distributedness by step and stability on a cached series"
    )
    p.add_argument("--series", required=True, help="the series name of the run's config (e.g. mini-suite-learns)")
    p.add_argument("--tasks", default=None, help="only spaces of this task set (when the series has several)")
    p.add_argument("--space", default="profile", help="task space for stability (profile, sym, G, J, ...)")
    p.add_argument("--estimate", default="exact", choices=["exact", "first_order"], help="transfer estimate")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples over tasks")
    p.add_argument("--permutations", type=int, default=999, help="Mantel permutations per stability comparison")
    p.add_argument("--csv", type=Path, default=None, help="also write the per-model table here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    results = load_series(Store(), args.series, args.tasks)
    if not results:
        raise ValueError(f"No cached task space belongs to series {args.series!r}: run its config first.")
    found = series_findings(
        results, space=args.space, estimate=args.estimate, n_boot=args.bootstrap, n_permutations=args.permutations
    )
    print(f"series {args.series!r}: {len(results)} task spaces, sizes {', '.join(found.sizes)}")
    for line in found.report():
        print(line)
    if args.csv:
        found.table().to_csv(args.csv, index=False)
        print(f"table written to {args.csv}")
    return 0
