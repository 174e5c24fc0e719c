"""Transfer-based similarity probing, unit by unit (METHODS.md s4, 4b, 5).

The runner (``precompute``) calls the unit functions below, caches each result on its own
(keys from :meth:`ProbeConfig.unit_key`), and finally calls :func:`assemble`:

* :func:`base_unit` — task j's eval-split margins at the base model (``eval1``);
* :func:`ftgd_unit` — FTGD on task i's tune split (an :class:`~taskspace_core.ftgd.FTGDResult`);
* :func:`transfer_unit` / :func:`transfer_row` — task j's eval margins with task i's update
  applied (``eval2[i, j]``); a row scores all its tasks in one stream (:func:`stream_margins`:
  length-sorted, prefix-shared, full batches) and splits it back into one unit per task;
* :func:`eval_gradient_unit` — first-order transfer (s4b), one column ``T_fo[:, j]``.

Units store margins, not just one metric, so switching ``metric`` never recomputes a unit.

First-order design: ``grad m_j`` (the gradient of task j's eval mean margin at the base
model) has as many entries as the model, far too many to cache per task (270 MB in fp16 for
SmolLM2). So the unit computes it, dots it with every given update ``delta_i`` (the fp16
delta, i.e. exactly what :func:`~taskspace_core.ftgd.applied` adds) while it is in memory,
and keeps only those N numbers: ``T_fo[i, j] = delta_i . grad m_j`` exactly. Adding a task k
then needs one new gradient (column k) and the dots of ``delta_k`` with every other task's
gradient (row k), i.e. the runner recomputes those units for the new delta set. The
estimate is of the *mean margin* change whatever ``metric`` says (accuracy has no
gradient); views label it as first-order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from taskspace_core import ftgd as ftgd_mod
from taskspace_core.configs import METRICS, ProbeConfig, ProbeError
from taskspace_core.ftgd import FTGDResult, applied, gradient_similarity, is_applied
from taskspace_core.ftgd.gradients import mean_gradient
from taskspace_core.models import LoadedModel
from taskspace_core.scoring import PairScorer, task_metrics
from taskspace_core.tasks import Task

Progress = Callable[[int], None]


def _eval_pairs(task: Task, cfg: ProbeConfig):
    return task.split(cfg.n_tune, cfg.n_eval)[1]


def _unit(task: Task, margins: np.ndarray) -> dict[str, Any]:
    return {"task": task.name, "margins": margins.astype(np.float64), **task_metrics(margins)}


def _score(loaded: LoadedModel, task: Task, cfg: ProbeConfig) -> dict[str, Any]:
    return _unit(task, PairScorer(loaded, cfg.scoring).score_pairs(_eval_pairs(task, cfg)).margins)


def stream_margins(loaded: LoadedModel, tasks: Sequence[Task], cfg: ProbeConfig) -> list[np.ndarray]:
    """Eval margins of every task (eval-pair order), scored as ONE stream, split back per task.

    The scorer sorts all the tasks' pairs by length together and fills each batch to its token
    budget, so N small tasks cost a few full batches instead of N part-filled ones.
    """
    if not tasks:
        return []
    splits = [_eval_pairs(t, cfg) for t in tasks]
    flat = [p for s in splits for p in s]
    margins = PairScorer(loaded, cfg.scoring).score_pairs(flat).margins if flat else np.zeros(0)
    return np.split(margins, np.cumsum([len(s) for s in splits])[:-1])


def _untuned(loaded: LoadedModel) -> None:
    if ftgd_mod.any_applied(loaded):
        raise ProbeError("base_unit must run on the untuned model, but an FTGD update is applied")


def base_unit(loaded: LoadedModel, task: Task, cfg: ProbeConfig) -> dict[str, Any]:
    """eval1 of one task: ``{task, margins, accuracy, mean_margin, n, ties}`` on its eval split."""
    _untuned(loaded)
    return _score(loaded, task, cfg)


def base_units(loaded: LoadedModel, tasks: Sequence[Task], cfg: ProbeConfig) -> list[dict[str, Any]]:
    """:func:`base_unit` of every task, from one stream (:func:`stream_margins`)."""
    _untuned(loaded)
    return [_unit(t, m) for t, m in zip(tasks, stream_margins(loaded, tasks, cfg), strict=True)]


TUNE_HALVES = (1, 2)


def tune_half(task: Task, cfg: ProbeConfig, half: int) -> tuple:
    """Half 1 or 2 of the task's tune split: disjoint, each ``len(tune) // 2`` pairs (split order is hashed)."""
    if half not in TUNE_HALVES:
        raise ProbeError(f"half must be 1 or 2, not {half!r}")
    tune = task.split(cfg.n_tune, cfg.n_eval)[0]
    k = len(tune) // 2
    if k < 1:
        raise ProbeError(f"task '{task.name}' has {len(tune)} tune pair(s); two halves need at least 2")
    return tune[:k] if half == 1 else tune[k : 2 * k]


def ftgd_unit(
    loaded: LoadedModel, task: Task, cfg: ProbeConfig, progress: Progress | None = None, half: int | None = None
) -> FTGDResult:
    """FTGD on the task's tune split (or on half 1 or 2 of it, see :func:`tune_half`);
    ``progress(1)`` per step (``cfg.ftgd.steps + 1`` calls)."""
    if ftgd_mod.any_applied(loaded):
        raise ProbeError("ftgd_unit must start from the untuned model, but an FTGD update is applied")
    tune = task.split(cfg.n_tune, cfg.n_eval)[0] if half is None else tune_half(task, cfg, half)
    if not tune:
        raise ProbeError(f"task '{task.name}' has too few pairs for a tune split (it has {len(task)})")
    result = ftgd_mod.run_ftgd(loaded, tune, cfg.ftgd, progress)
    return result


@contextlib.contextmanager
def _applied_once(loaded: LoadedModel, ftgd_result: FTGDResult) -> Iterator[None]:
    """``applied`` unless the caller already holds it for this very update."""
    if is_applied(loaded, ftgd_result):
        yield
        return
    if ftgd_mod.any_applied(loaded):
        raise ProbeError("another FTGD update is applied; leave its applied() block before this transfer")
    with applied(loaded, ftgd_result):
        yield


def transfer_unit(
    loaded: LoadedModel,
    ftgd_result: FTGDResult,
    task_j: Task,
    cfg: ProbeConfig,
    margins: np.ndarray | None = None,
) -> dict[str, Any]:
    """eval2 of (i, j): task j's eval margins with task i's update applied.

    If the caller already holds ``applied(loaded, ftgd_result)`` (the runner does, once per i),
    the model is scored as it is; otherwise the update is applied for this call only.
    ``margins``: task j's eval margins already scored under that update (one slice of
    :func:`stream_margins`, as :func:`transfer_row` does); they are only packaged as the unit.
    """
    if margins is not None:
        n = len(_eval_pairs(task_j, cfg))
        if len(margins) != n:
            raise ProbeError(f"{len(margins)} margins given for the {n} eval pairs of {task_j.name}")
        return _unit(task_j, margins)
    with _applied_once(loaded, ftgd_result):
        return _score(loaded, task_j, cfg)


def transfer_stream(
    loaded: LoadedModel, ftgd_result: FTGDResult, tasks: Sequence[Task], cfg: ProbeConfig
) -> list[np.ndarray]:
    """Eval margins of every task under task i's update: the update applied once, one stream."""
    with _applied_once(loaded, ftgd_result):
        return stream_margins(loaded, tasks, cfg)


def transfer_row(
    loaded: LoadedModel,
    ftgd_result: FTGDResult,
    tasks: Sequence[Task],
    cfg: ProbeConfig,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """``transfer_unit`` for every task from one stream (:func:`transfer_stream`); ``progress(1)`` per task."""
    out = []
    for t, m in zip(tasks, transfer_stream(loaded, ftgd_result, tasks, cfg), strict=True):
        out.append(transfer_unit(loaded, ftgd_result, t, cfg, margins=m))
        if progress:
            progress(1)
    return out


def eval_gradient(loaded: LoadedModel, task: Task, cfg: ProbeConfig) -> dict[str, torch.Tensor]:
    """Gradient of task j's eval mean margin (sum reduction) at the model as it is, per selectable tensor."""
    if cfg.scoring.reduction != "sum":
        raise ProbeError("the first-order estimate needs reduction='sum' (its gradient is of summed log-probs)")
    pairs = _eval_pairs(task, cfg)
    sel = ftgd_mod.selectable_parameters(loaded.model, cfg.ftgd.include_embeddings)
    names, params = [n for n, _ in sel], [p for _, p in sel]
    with ftgd_mod._grads_on(params):
        acc, _ = mean_gradient(loaded, params, list(pairs), lambda m: m)
    return dict(zip(names, acc, strict=True))


class DeltaStack:
    """Many sparse updates' entries concatenated per tensor once, so that ``delta_i . grad`` of every
    update ``i`` costs one gather per tensor for each gradient (the first-order estimate dots N
    updates with each of N gradients: per (update, tensor) gathers took 15 s per gradient at 67
    BLiMP tasks, re-concatenating per gradient 1.8 s, this 0.5 s; it holds 6 bytes per entry)."""

    def __init__(self, results: Mapping[str, FTGDResult]) -> None:
        self.keys = list(results)
        self.parts: dict[str, tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]] = {}
        for name in sorted({n for r in results.values() for n in r.delta}):
            parts = [(k, results[key].delta.get(name)) for k, key in enumerate(self.keys)]
            parts = [(k, d) for k, d in parts if d is not None and len(d[0])]
            if not parts:
                continue
            idx = np.concatenate([d[0] for _, d in parts])
            idx = idx.astype(np.int32 if idx.max() < 2**31 else np.int64, copy=False)
            vals = np.concatenate([d[1] for _, d in parts])
            starts = np.cumsum([0] + [len(d[0]) for _, d in parts[:-1]])
            owners = np.array([k for k, _ in parts])
            self.parts[name] = (torch.from_numpy(idx), torch.from_numpy(vals), owners, starts)

    def dots(self, grads: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """``delta_i . grad`` for every update (its fp16 delta as applied), summed in float64."""
        totals = np.zeros(len(self.keys))
        for name, (idx, vals, owners, starts) in self.parts.items():
            g = grads[name].reshape(-1)
            prod = (g[idx.to(g.device)].double() * vals.to(g.device).double()).cpu().numpy()
            totals[owners] += np.add.reduceat(prod, starts)
        return {key: float(t) for key, t in zip(self.keys, totals, strict=True)}


def delta_dot(result: FTGDResult, grads: Mapping[str, torch.Tensor]) -> float:
    """``delta . grad`` of one update (:class:`DeltaStack`)."""
    return DeltaStack({"": result}).dots(grads)[""]


def eval_gradient_unit(
    loaded: LoadedModel, task: Task, cfg: ProbeConfig, ftgd_results: Mapping[str, FTGDResult] | DeltaStack
) -> dict[str, Any]:
    """First-order column j: ``{task, dots: {i: delta_i . grad m_j}, grad_sq_norm, n}`` at the base model."""
    if ftgd_mod.any_applied(loaded):
        raise ProbeError("the first-order gradient is taken at the untuned model, but an FTGD update is applied")
    grads = eval_gradient(loaded, task, cfg)
    stack = ftgd_results if isinstance(ftgd_results, DeltaStack) else DeltaStack(ftgd_results)
    dots = stack.dots(grads)
    sq = float(sum(float(torch.dot(g.reshape(-1).double(), g.reshape(-1).double())) for g in grads.values()))
    return {"task": task.name, "dots": dots, "grad_sq_norm": sq, "n": len(_eval_pairs(task, cfg))}


# ----------------------------------------------------------------------------- assembly


def mask_jaccard(results: Sequence[FTGDResult]) -> np.ndarray:
    """J: Jaccard of the FTGD masks, from sparse indices (memory ~ one bool per selectable entry)."""
    n = len(results)
    if len({r.names for r in results}) > 1:
        raise ProbeError("masks cover different parameters: use one model and one config for all tasks")
    idx = [r.global_mask_indices() for r in results]
    total = results[0].n_selectable if results else 0
    scratch = np.zeros(total, dtype=bool)
    inter = np.zeros((n, n), dtype=np.int64)
    for i in range(n):
        scratch[idx[i]] = True
        for j in range(i, n):
            inter[i, j] = inter[j, i] = int(np.count_nonzero(scratch[idx[j]]))
        scratch[idx[i]] = False
    size = np.diag(inter).astype(float)
    union = size[:, None] + size[None, :] - inter
    return np.divide(inter, union, out=np.zeros((n, n)), where=union > 0)


def _lifts(J: np.ndarray, results: Sequence[FTGDResult], k: float) -> tuple[np.ndarray, np.ndarray]:
    from taskspace_core.spaces import overlap_lift

    names = results[0].names
    sizes = np.array([results[0].tensor_sizes[t] for t in names], dtype=float)
    counts = np.array([[r.counts_per_tensor[t] for t in names] for r in results], dtype=float)
    return (
        overlap_lift(J, counts, sizes, baseline="per_tensor"),
        overlap_lift(J, counts, sizes, baseline="uniform", k=k),
    )


def _transfer_lookup(transfers: Mapping[Any, Any], names: Sequence[str]) -> dict[tuple[str, str], dict]:
    """Accept ``{(i, j): unit}`` or ``{i: [unit per task, with 'task' = j]}``."""
    out: dict[tuple[str, str], dict] = {}
    for key, value in transfers.items():
        if isinstance(key, tuple):
            out[key] = value
        else:
            for unit in value:
                out[(key, unit["task"])] = unit
    return out


def assemble(
    tasks: Sequence[Task],
    base: Mapping[str, dict],
    ftgd: Mapping[str, FTGDResult],
    transfers: Mapping[Any, Any],
    cfg: ProbeConfig,
    first_order: Mapping[str, dict] | None = None,
) -> dict[str, Any]:
    """Matrices of one task space, rows/cols in ``tasks`` order (missing units -> NaN).

    ``base``: task -> :func:`base_unit`; ``ftgd``: task -> :class:`FTGDResult`; ``transfers``:
    ``{(i, j): transfer_unit}`` or ``{i: transfer_row(...)}``; ``first_order``: task j ->
    :func:`eval_gradient_unit`. Returns eval1, eval2, T, T_first_order, G, J, lift_per_tensor,
    lift_uniform, mask_distribution, curves, tune_before, n_eval_pairs, metric.
    """
    names = [t.name for t in tasks]
    n = len(names)
    metric = cfg.metric
    missing = [t for t in names if t not in base]
    if missing:
        raise ProbeError(f"base scores are missing for {', '.join(missing)}; run their base units first")
    eval1 = {m: np.array([base[t][m] for t in names], dtype=float) for m in METRICS}
    lookup = _transfer_lookup(transfers, names)
    eval2 = np.full((n, n), np.nan)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if (a, b) in lookup:
                eval2[i, j] = lookup[(a, b)][metric]
    T = eval2 - eval1[metric][None, :] if lookup else None
    T_fo = None
    if first_order:
        T_fo = np.full((n, n), np.nan)
        for j, b in enumerate(names):
            col = first_order.get(b)
            if col is None:
                continue
            for i, a in enumerate(names):
                if a in col["dots"]:
                    T_fo[i, j] = col["dots"][a]
    out: dict[str, Any] = {
        "names": names,
        "metric": metric,
        "eval1": eval1,
        "eval2": eval2,
        "T": T,
        "T_first_order": T_fo,
        "G": None,
        "J": None,
        "lift_per_tensor": None,
        "lift_uniform": None,
        "mask_distribution": {},
        "curves": {},
        "tune_before": {},
        "n_eval_pairs": int(min(base[t]["n"] for t in names)) if names else 0,
    }
    if all(t in ftgd for t in names) and names:
        results = [ftgd[t] for t in names]
        out["G"] = gradient_similarity(results)
        out["J"] = mask_jaccard(results)
        out["lift_per_tensor"], out["lift_uniform"] = _lifts(out["J"], results, cfg.ftgd.mask_fraction)
        out["mask_distribution"] = {t: ftgd[t].mask_distribution for t in names}
        out["curves"] = {t: ftgd[t].curve for t in names}
        out["tune_before"] = {t: ftgd[t].tune_before for t in names}
    return out
