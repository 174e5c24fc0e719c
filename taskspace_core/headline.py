"""The headline result of an analysis in one sentence: does the transfer space group by category?

The Home page states it for the cached default analysis: the Spearman fit of the profile
similarity of T to the category hypothesis, with its 95% bootstrap interval over eval pairs,
its Mantel p and the space's split-half reliability (noise ceiling), all from the run's
per-pair margins at no model cost. Without margins it gives the fit alone and says why.
The interval says how far the fit would move with other eval pairs of the same tasks; the
p-value asks whether the grouping beats shuffled task labels. They answer different questions,
so an interval clear of zero can sit beside p > 0.05 (the previous default: 0.18, 95% CI over
eval pairs 0.11–0.25, p = 0.083).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

from taskspace_core import methods, spaces
from taskspace_core.results import SpaceResult
from taskspace_core.spaces import PairMargins

LEVEL = "category"
ALPHA = 0.05


@dataclass(frozen=True)
class Headline:
    """The category fit of a space's transfer profiles; ``ci`` / ``reliability`` are None with ``note`` saying why."""

    model: str
    spearman: float
    mantel_p: float
    ci: tuple[float, float] | None
    reliability: float | None
    n_tasks: int
    n_eval: int
    note: str = ""

    def sentence(self) -> str:
        if not math.isfinite(self.spearman):
            return f"On {self.model}, the category fit of the transfer profiles is undefined ({self.note})."
        verb = "group by category" if self.mantel_p <= ALPHA else "do not detectably group by category"
        ci = f" (95% CI over eval pairs {self.ci[0]:.2f}–{self.ci[1]:.2f})" if self.ci else ""
        rel = f", reliability {self.reliability:.2f}" if self.reliability is not None else ""
        tail = f" No interval: {self.note}." if self.note else ""
        return (
            f"On {self.model}, transfer profiles {verb}: Spearman {self.spearman:.2f}{ci}, "
            f"Mantel p = {_p(self.mantel_p)}{rel} ({self.n_tasks} tasks, {self.n_eval} eval pairs each).{tail}"
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def category_headline(
    space: SpaceResult,
    margins: PairMargins | None,
    why: str = "",
    n_boot: int = spaces.DEFAULT_BOOTSTRAP,
    n_permutations: int = spaces.DEFAULT_PERMUTATIONS,
) -> Headline | None:
    """The headline of ``space`` (None when it has no transfer matrix or no category grouping)."""
    if space.T is None or LEVEL not in space.levels() or spaces.ari_degenerate_reason(space.labels(LEVEL)):
        return None
    H = spaces.HypothesisSpace.from_labels(LEVEL, space.names, space.labels(LEVEL))
    step = space.model.step
    label = space.model.label + (f" (step {step})" if step is not None and str(step) not in space.model.label else "")
    n_eval = int(space.n_eval_pairs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", spaces.SpaceWarning)
        if margins is None:
            S = methods.view("profile").make(space)
            fit = spaces.fit_hypothesis(S, H, n_permutations=n_permutations)
            return Headline(label, fit.spearman, fit.mantel_p, None, None, len(space.names), n_eval, why)
        metric = space.metric if space.metric in ("mean_margin", "accuracy") else "mean_margin"
        boot = spaces.bootstrap_transfer(margins, metric=metric, n_boot=n_boot)  # type: ignore[arg-type]
        fi = spaces.bootstrap_fit(boot, H, n_permutations=n_permutations)
        rel = spaces.split_half_reliability(margins, metric=metric)  # type: ignore[arg-type]
    ci = fi.spearman_ci if all(math.isfinite(x) for x in fi.spearman_ci) else None
    reliability = rel.ceiling if math.isfinite(rel.ceiling) else None
    return Headline(
        label, fi.fit.spearman, fi.fit.mantel_p, ci, reliability, len(space.names), min(margins.n_pairs), ""
    )
