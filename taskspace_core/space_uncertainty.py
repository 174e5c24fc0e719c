"""The uncertainty stored with an assembled space (METHODS s6), and the fit rows that read it.

At assembly the runner builds :class:`~taskspace_core.spaces.PairMargins` from the cached
base and transfer units (``SpaceResult.pair_margins``) and computes once, at no model cost,
what the views and exports show (``SpaceResult.uncertainty``):

* ``T``: 95% bootstrap interval (``low`` / ``high``, N x N) of every T cell, for the run's metric;
* ``base``: the interval of each task's base accuracy and mean margin;
* ``reliability``: the split-half (eval-noise) noise ceiling of each symmetric transfer view;
* ``tuning_reliability``: the same from two tunings on disjoint halves of each tune split
  (``probe.tuning_halves``), so tuning noise counts too.

A first-order run has no per-pair values of T: its ``T`` entry is None and ``note`` says so.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from taskspace_core import spaces
from taskspace_core.spaces import PairMargins, SpaceError
from taskspace_core.spaces.uncertainty import DEFAULT_BOOTSTRAP, METRICS

TRANSFER_VIEWS = ("sym", "profile")  # the symmetric views built from T, with a reliability each
VIEW_OF_STATISTIC = {"T_sym": "sym", "T_profile": "profile"}  # export names of those views
NO_PER_PAIR_T = "first-order estimate: no per-pair values, so no interval"
EVAL_NOISE = "eval-noise split-half"
TUNING_NOISE = "eval- and tuning-noise split-half"


def pair_margins(
    names: Sequence[str], base: Mapping[str, dict], transfers: Mapping[tuple[str, str], dict]
) -> PairMargins | None:
    """Per-pair margins from base units (task -> unit) and transfer units ((tuned, evaluated) -> unit).

    None when a unit is missing or holds no margins (units cached before they stored them), or
    when there are too few tasks or eval pairs for an interval (:meth:`PairMargins.from_arrays`).
    """
    try:
        b = [base[t]["margins"] for t in names]
        tuned = [[transfers[(i, j)]["margins"] for j in names] for i in names]
        return PairMargins.from_arrays(b, tuned)
    except (KeyError, SpaceError):
        return None


def _base_only(base: Sequence[np.ndarray]) -> PairMargins:
    # tuned = base: the bootstrap of the base metrics is the same, and T (all zero) is not used
    return PairMargins.from_arrays(base, [list(base)] * len(base))


def _reliabilities(margins: PairMargins, metric: str, second: PairMargins | None, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for how in TRANSFER_VIEWS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN splits (a constant half) give NaN
                rel = spaces.split_half_reliability(margins, how=how, metric=metric, second_tuning=second, **kw)  # type: ignore[arg-type]
            out[how] = rel.as_dict()
        except SpaceError as exc:
            out[how] = {"error": str(exc)}
    return out


def compute_uncertainty(
    base: Sequence[np.ndarray] | None,
    margins: PairMargins | None,
    metric: str,
    tuning: tuple[PairMargins, PairMargins] | None = None,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    level: float = 0.95,
    n_splits: int = 100,
) -> dict[str, Any] | None:
    """The ``SpaceResult.uncertainty`` record (see the module docstring); None without base margins."""
    if margins is None and base is None:
        return None
    out: dict[str, Any] = {"metric": metric, "n_boot": n_boot, "seed": seed, "level": level, "T": None}
    try:
        source = margins if margins is not None else _base_only(base)  # type: ignore[arg-type]
    except SpaceError as exc:
        return {**out, "note": f"no intervals: {exc}"}
    boot = spaces.bootstrap_transfer(source, metric=metric, n_boot=n_boot, seed=seed, level=level)  # type: ignore[arg-type]
    out["base"] = {m: {"low": boot.base[m].low, "high": boot.base[m].high} for m in METRICS}
    if margins is None:
        return {**out, "note": NO_PER_PAIR_T}
    out["T"] = {"low": boot.T.low, "high": boot.T.high}
    out["reliability"] = _reliabilities(margins, metric, None, n_splits=n_splits, seed=seed)
    if tuning is not None:
        out["tuning_reliability"] = _reliabilities(tuning[0], metric, tuning[1], n_splits=n_splits, seed=seed)
    return out


# ----------------------------------------------------------------------------- reading it back


def t_interval(space: Any, estimate: str = "exact") -> tuple[np.ndarray, np.ndarray] | None:
    """(low, high) of every T cell, or None (first-order estimate, or a space stored before intervals)."""
    unc = getattr(space, "uncertainty", None) or {}
    if estimate != "exact" or not unc.get("T"):
        return None
    return np.asarray(unc["T"]["low"], dtype=float), np.asarray(unc["T"]["high"], dtype=float)


def base_interval(space: Any, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(low, high) of each task's base ``metric``, or None when the space has no intervals."""
    unc = getattr(space, "uncertainty", None) or {}
    b = (unc.get("base") or {}).get(metric)
    return None if b is None else (np.asarray(b["low"], dtype=float), np.asarray(b["high"], dtype=float))


def reliability(space: Any, view: str) -> dict[str, Any] | None:
    """The noise ceiling of a transfer view: ``{ceiling, source, label, ...}``, the tuning-noise one when the
    run measured it (it includes eval noise), else the eval-noise one; None when not stored."""
    unc = getattr(space, "uncertainty", None) or {}
    view = VIEW_OF_STATISTIC.get(view, view)
    for key, label in (("tuning_reliability", TUNING_NOISE), ("reliability", EVAL_NOISE)):
        rel = (unc.get(key) or {}).get(view)
        if rel and "ceiling" in rel:
            return {**rel, "label": label}
    return None


def reliability_badge(space: Any, view: str) -> str:
    """'reliability 0.62 (eval-noise split-half)', or '' when the space has none for this view."""
    rel = reliability(space, view)
    if rel is None or not np.isfinite(rel["ceiling"]):
        return ""
    return f"reliability {rel['ceiling']:.2f} ({rel['label']})"


def space_bootstrap(space: Any) -> spaces.TransferBootstrap | None:
    """The bootstrap of a space's stored margins, as stored (same resamples, seed and level); None without them."""
    margins = getattr(space, "pair_margins", None)
    if margins is None:
        return None
    unc = space.uncertainty or {}
    return spaces.bootstrap_transfer(
        margins,
        metric=space.metric,
        n_boot=int(unc.get("n_boot", DEFAULT_BOOTSTRAP)),
        seed=int(unc.get("seed", 0)),
        level=float(unc.get("level", 0.95)),
    )


def fit_row(
    space: Any,
    view: str,
    S: np.ndarray,
    H: spaces.HypothesisSpace,
    n_permutations: int,
    seed: int = 0,
    estimate: str = "exact",
    boot: spaces.TransferBootstrap | None = None,
) -> dict[str, Any]:
    """One fit of a symmetric view to H: the fit, its permutation p-values and, for the transfer views of an
    exact run, 95% bootstrap intervals over eval pairs and the view's noise ceiling.

    Columns: :meth:`FitResult.as_dict`, ``{spearman,wmb,ari}_ci_lo/_ci_hi``, ``ceiling``,
    ``ceiling_source`` (NaN / '' where there is no interval). The point and p come from
    :func:`bootstrap_fit` when it runs, so they and the interval are of one space (for ``sym`` its
    self-transfer guard also drops tasks whose self-transfer interval includes zero). ``boot``: the
    space's :func:`space_bootstrap`, when the caller fits several hypotheses (else it is made here).
    """
    view = VIEW_OF_STATISTIC.get(view, view)
    margins = getattr(space, "pair_margins", None) if estimate == "exact" else None
    row: dict[str, Any] = {}
    if view in TRANSFER_VIEWS and margins is not None:
        boot = boot if boot is not None else space_bootstrap(space)
        fi = spaces.bootstrap_fit(boot, H, how=view, n_permutations=n_permutations, seed=seed)  # type: ignore[arg-type]
        row.update(fi.fit.as_dict())
        for name, ci in (("spearman", fi.spearman_ci), ("wmb", fi.wmb_ci), ("ari", fi.ari_ci)):
            row[f"{name}_ci_lo"], row[f"{name}_ci_hi"] = ci
    else:
        row.update(spaces.fit_hypothesis(S, H, n_permutations=n_permutations, seed=seed).as_dict())
        for name in ("spearman", "wmb", "ari"):
            row[f"{name}_ci_lo"] = row[f"{name}_ci_hi"] = float("nan")
    rel = reliability(space, view) if estimate == "exact" else None
    row["ceiling"] = float(rel["ceiling"]) if rel else float("nan")
    row["ceiling_source"] = rel["label"] if rel else ""
    return row


def fit_sentence(row: Mapping[str, Any], stat: str = "spearman") -> str:
    """'the category fit is 0.17 [0.05, 0.30], p 0.09, of a possible 0.62' (ceiling and interval when known)."""
    col = {"within_minus_between": "wmb"}.get(stat, stat)
    p = {"spearman": "mantel_p", "wmb": "wmb_p", "ari": "ari_p"}[col]
    text = f"the {row['level']} fit is {row[stat]:.2f}"
    lo, hi = row.get(f"{col}_ci_lo", np.nan), row.get(f"{col}_ci_hi", np.nan)
    if np.isfinite(lo) and np.isfinite(hi):
        text += f" [{lo:.2f}, {hi:.2f}]"
    if np.isfinite(row.get(p, np.nan)):
        text += f", p {row[p]:.3g}"
    ceiling = row.get("ceiling", np.nan)
    if np.isfinite(ceiling):
        text += f", of a possible {ceiling:.2f} ({row.get('ceiling_source', '')})"
    return text


def reliability_rows(space: Any) -> list[dict[str, Any]]:
    """Every stored reliability of a space as rows (view, noise, split_half, ceiling, sd, n_splits)."""
    unc = getattr(space, "uncertainty", None) or {}
    rows = []
    for key, label in (("reliability", EVAL_NOISE), ("tuning_reliability", TUNING_NOISE)):
        for view, rel in (unc.get(key) or {}).items():
            rows.append({"view": view, "noise": label, **{k: rel.get(k, np.nan) for k in ("split_half", "ceiling")},
                         "split_half_sd": rel.get("split_half_sd", np.nan), "n_splits": rel.get("n_splits", 0),
                         "error": rel.get("error", "")})  # fmt: skip
    return rows


def t_interval_frame(space: Any, T: np.ndarray) -> Any:
    """Long table of T cells (tuned, evaluated, T, T_lo, T_hi), or None when the space has no T interval."""
    import pandas as pd

    iv = t_interval(space)
    if iv is None:
        return None
    n = len(space.names)
    i, j = np.divmod(np.arange(n * n), n)
    names = np.asarray(space.names, dtype=object)
    return pd.DataFrame(
        {
            "tuned": names[i],
            "evaluated": names[j],
            "T": np.asarray(T).ravel(),
            "T_lo": iv[0].ravel(),
            "T_hi": iv[1].ravel(),
        }
    )
