"""The paper's three findings on a series of cached task spaces (sizes x checkpoints).

(1) generalisation by size, at the last step all sizes have (equal training); (2) distributedness (overlap lift
within minus between categories) by step, per size; (3) stability of the task space across
steps, per size. The statistics and their tests are :mod:`taskspace_core.spaces.findings`;
this module picks the matrices out of :class:`SpaceResult` objects and writes the report that
``precompute findings`` prints and docs/PRETRAIN.md quotes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from taskspace_core import methods, spaces
from taskspace_core.results import SpaceResult


@dataclass
class SeriesFindings:
    """Per-finding results; a finding the series cannot test is ``None`` with its reason in ``notes``."""

    sizes: list[str]
    generalisation: spaces.Trend | None = None
    distributedness: dict[str, spaces.Trend] = field(default_factory=dict)
    stability: dict[str, spaces.StabilityTest] = field(default_factory=dict)
    space: str = "profile"
    generalisation_step: int | None = None  # the step at which the sizes are compared
    notes: list[str] = field(default_factory=list)

    def report(self) -> list[str]:
        """Plain-text lines: one per finding and size, with intervals and p."""
        out = []
        if self.generalisation is not None:
            where = f" at step {self.generalisation_step}" if self.generalisation_step is not None else ""
            out.append(f"(1) by size ({', '.join(self.sizes)}){where}: " + self.generalisation.sentence("size"))
        for size, t in self.distributedness.items():
            out.append(f"(2) {size}: " + t.sentence("step"))
        for size, s in self.stability.items():
            out.append(f"(3) {size}, {self.space} space: " + s.sentence())
        return out + [f"note: {n}" for n in self.notes]

    def table(self) -> pd.DataFrame:
        """One row per model and finding: value, interval and (for stability) the comparison's p."""
        rows: list[dict[str, object]] = []
        if self.generalisation is not None:
            g = self.generalisation
            for size, x, v, lo, hi in zip(self.sizes, g.x, g.value, g.low, g.high, strict=True):
                rows.append({"finding": "generalisation", "size": size, "x": x, "value": v, "low": lo, "high": hi})
        for size, t in self.distributedness.items():
            for x, v, lo, hi in zip(t.x, t.value, t.low, t.high, strict=True):
                rows.append({"finding": "within-between lift", "size": size, "x": x, "value": v, "low": lo, "high": hi})
        for size, s in self.stability.items():
            for what, comps, xs in (("vs previous", s.consecutive, s.x[1:]), ("vs last", s.against_last, s.x[:-1])):
                for x, c in zip(xs, comps, strict=True):
                    rows.append(
                        {"finding": f"stability {what}", "size": size, "x": x, "value": c.rho,
                         "low": c.low, "high": c.high, "p": c.p}
                    )  # fmt: skip
        return pd.DataFrame(rows)


def _by_size(results: Sequence[SpaceResult]) -> dict[str, list[SpaceResult]]:
    """Results grouped by size label (ordered by parameter count), each group ordered by step; of two
    results for one size and step the first given is kept (``load_series`` gives the newest first)."""
    groups: dict[str, dict[int, SpaceResult]] = {}
    for r in results:
        if r.model.step is not None:
            groups.setdefault(r.model.size_label or r.model.label, {}).setdefault(int(r.model.step), r)
    ordered = {k: [g[s] for s in sorted(g)] for k, g in groups.items()}
    return dict(sorted(ordered.items(), key=lambda kv: kv[1][-1].model.n_parameters))


def series_findings(
    results: Sequence[SpaceResult],
    *,
    space: str = "profile",
    estimate: str = "exact",
    n_boot: int = 1000,
    n_permutations: int = 999,
    seed: int = 0,
) -> SeriesFindings:
    """Test the three findings on the spaces of one series (all over the same tasks)."""
    groups = _by_size(results)
    names = {tuple(r.names) for g in groups.values() for r in g}
    if len(names) > 1:
        raise spaces.SpaceError("The spaces of a series must cover the same tasks to be compared.")
    out = SeriesFindings(sizes=list(groups), space=space)
    if not groups:
        out.notes.append("no model of this series has a step: sizes x checkpoints are needed")
        return out
    cats = next(iter(groups.values()))[0].labels("category")
    kw = {"n_boot": n_boot, "seed": seed}
    # sizes compared at equal training: the last step every size has (else each size's last, noted)
    common = set.intersection(*({r.model.step for r in g} for g in groups.values()))
    at = max(common) if common else None
    finals = [next(r for r in g if r.model.step == at) if at is not None else g[-1] for g in groups.values()]
    out.generalisation_step = at
    if at is None and len(groups) > 1:
        out.notes.append("the sizes share no step: generalisation compares each size's last checkpoint")
    Ts = [methods.family_source(r, "transfer", estimate)[0] for r in finals]
    if len(finals) < 2:
        out.notes.append("generalisation by size needs two sizes or more")
    elif any(T is None for T in Ts) or any(r.model.n_parameters <= 0 for r in finals):
        out.notes.append("generalisation by size needs a transfer matrix and a parameter count for every size")
    else:
        out.generalisation = spaces.generalisation_trend(Ts, [r.model.n_parameters for r in finals], cats, **kw)
    for size, g in groups.items():
        if len(g) < 2:
            out.notes.append(f"{size}: one checkpoint only, so no trend over steps")
            continue
        steps = [float(r.model.step) for r in g]
        lifts = [r.matrices.get("lift_per_tensor") for r in g]
        if all(L is not None for L in lifts):
            out.distributedness[size] = spaces.distributedness_trend(lifts, steps, cats, **kw)
        else:
            out.notes.append(f"{size}: no mask overlap (lift) in every checkpoint")
        if all(methods.view(space).present(r) for r in g):
            mats = [np.asarray(methods.view(space).make(r, estimate), dtype=float) for r in g]
            out.stability[size] = spaces.stability_test(mats, steps, n_permutations=n_permutations, **kw)
        else:
            out.notes.append(f"{size}: the {space} space is missing in some checkpoint")
    return out
