"""Transfer probing, unit by unit, on tiny models; integration on SmolLM2 + BLiMP (slow)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytest

from taskspace_core import ftgd, probing
from taskspace_core.ftgd import FTGDConfig
from taskspace_core.probing import ProbeConfig, ProbeError
from taskspace_core.spaces import symmetrise
from taskspace_core.tasks import MinimalPair, Task
from tests.tiny_models import NOUNS, NOUNS_PL, VERBS, VERBS_PL, tiny_loaded_model, train_tiny

BLIMP = Path(__file__).resolve().parents[2] / "shared" / "blimp"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # fixture in conftest.py


# ----------------------------------------------------------------------------- a toy language


def toy_pairs() -> dict[str, list[MinimalPair]]:
    """Three agreement phenomena of a toy English, as minimal pairs (good, bad)."""
    sv, det, refl = [], [], []
    for sg, pl in zip(NOUNS, NOUNS_PL, strict=True):
        for v, vp in zip(VERBS, VERBS_PL, strict=True):  # subject-verb agreement
            sv.append(MinimalPair(f"the {sg} {v} .", f"the {sg} {vp} ."))
            sv.append(MinimalPair(f"the {pl} {vp} .", f"the {pl} {v} ."))
        for d_sg, d_pl in (("this", "these"), ("that", "those")):  # determiner-noun agreement
            for verb in ("see", "saw"):
                det.append(MinimalPair(f"i {verb} {d_sg} {sg} .", f"i {verb} {d_sg} {pl} ."))
                det.append(MinimalPair(f"i {verb} {d_pl} {pl} .", f"i {verb} {d_pl} {sg} ."))
        for verb_sg, verb_pl in (("saw", "saw"), ("sees", "see")):  # anaphor agreement
            refl.append(MinimalPair(f"the {sg} {verb_sg} itself .", f"the {sg} {verb_sg} themselves ."))
            refl.append(MinimalPair(f"the {pl} {verb_pl} themselves .", f"the {pl} {verb_pl} itself ."))
    return {"sv": sv, "det": det, "refl": refl}


def halves(phenomena: dict[str, list[MinimalPair]], seed: int = 0) -> list[Task]:
    """Each phenomenon split at random into two tasks ``<name>_a`` / ``<name>_b`` of one category."""
    rng = random.Random(seed)
    tasks = []
    for name, pairs in phenomena.items():
        pairs = list(pairs)
        rng.shuffle(pairs)
        for part, sub in (("a", pairs[0::2]), ("b", pairs[1::2])):
            tasks.append(Task(f"{name}_{part}", tuple(sub), category=name, field="toy"))
    return tasks


@pytest.fixture(scope="module")
def trained_llama():
    """A tiny Llama that learned the toy language (a few seconds of training)."""
    sentences = [p.good for ps in toy_pairs().values() for p in ps]
    lm = tiny_loaded_model("llama", seed=0, hidden=48)
    return train_tiny(lm, sentences, steps=300, lr=3e-3, batch=32)


def run_space(lm, tasks, cfg, first_order=False):
    base = {t.name: probing.base_unit(lm, t, cfg) for t in tasks}
    results = {t.name: probing.ftgd_unit(lm, t, cfg) for t in tasks}
    transfers = {t.name: probing.transfer_row(lm, results[t.name], tasks, cfg) for t in tasks}
    fo = None
    if first_order:
        fo = {t.name: probing.eval_gradient_unit(lm, t, cfg, results) for t in tasks}
    return probing.assemble(tasks, base, results, transfers, cfg, first_order=fo), results


def nearest(S: np.ndarray) -> np.ndarray:
    A = S.copy()
    np.fill_diagonal(A, -np.inf)
    return A.argmax(axis=1)


TWIN = np.array([1, 0, 3, 2, 5, 4])  # index of each half's other half in halves() order


# ----------------------------------------------------------------------------- fast tests


def test_trained_toy_model_halves_are_nearest_in_G_and_T(trained_llama):
    lm = trained_llama
    tasks = halves(toy_pairs())
    fcfg = FTGDConfig(mask_fraction=0.02, steps=10, lr=3e-3, batch_size=8, mask_pairs=32, sketch_dim=2**16)
    cfg = ProbeConfig(n_tune=24, n_eval=24, ftgd=fcfg)
    space, results = run_space(lm, tasks, cfg, first_order=True)
    # the model learned the language: the base model prefers the good sentences
    assert space["eval1"]["accuracy"].min() > 0.9
    T, G = space["T"], space["G"]
    assert np.all(np.diag(T) > 0)
    np.testing.assert_array_equal(nearest(G), TWIN)
    np.testing.assert_array_equal(nearest(symmetrise(T, "profile")), TWIN)
    np.testing.assert_array_equal(nearest(symmetrise(T, "sym")), TWIN)
    # masks of one phenomenon overlap more than masks of different ones
    J = space["J"]
    np.testing.assert_array_equal(nearest(J), TWIN)
    assert np.nanmin(space["lift_uniform"]) > 1.0
    # the first-order estimate ranks like the exact transfer (0.6-0.9 over training seeds at this lr)
    from scipy.stats import spearmanr

    assert spearmanr(T.ravel(), space["T_first_order"].ravel()).statistic > 0.5


def test_first_order_equals_exact_transfer_for_small_updates(trained_llama):
    # In the linear regime (tiny lr, few steps) delta_i . grad m_j is the transfer itself.
    tasks = halves({k: v[:48] for k, v in toy_pairs().items()})
    fcfg = FTGDConfig(mask_fraction=0.02, steps=2, lr=1e-5, batch_size=8, mask_pairs=16, sketch_dim=2**10)
    cfg = ProbeConfig(n_tune=12, n_eval=12, ftgd=fcfg)
    space, _ = run_space(trained_llama, tasks, cfg, first_order=True)
    T, T_fo = space["T"], space["T_first_order"]
    scale = np.abs(T).max()
    assert scale > 0
    np.testing.assert_allclose(T_fo, T, atol=0.05 * scale)


def test_units_assemble_and_transfer_with_or_without_applied():
    lm = tiny_loaded_model("gpt2", seed=3)
    tasks = halves({k: v[:40] for k, v in toy_pairs().items()})[:3]
    cfg = ProbeConfig(n_tune=8, n_eval=8, ftgd=FTGDConfig(mask_fraction=0.02, steps=2, lr=1e-2, sketch_dim=2**10))
    base = {t.name: probing.base_unit(lm, t, cfg) for t in tasks}
    assert base["sv_a"]["n"] == 8 and base["sv_a"]["margins"].shape == (8,)
    ticks: list[int] = []
    res = probing.ftgd_unit(lm, tasks[0], cfg, progress=ticks.append)
    assert len(ticks) == cfg.ftgd.steps + 1
    alone = probing.transfer_unit(lm, res, tasks[1], cfg)
    assert not ftgd.any_applied(lm)
    row = probing.transfer_row(lm, res, tasks, cfg, progress=ticks.append)
    # the same numbers up to float order (which rows share a lane's positions differs)
    np.testing.assert_allclose(row[1]["margins"], alone["margins"], rtol=0, atol=1e-5)
    with ftgd.applied(lm, res):
        with pytest.raises(ProbeError, match="untuned"):
            probing.base_unit(lm, tasks[0], cfg)
        again = probing.transfer_unit(lm, res, tasks[1], cfg)
    np.testing.assert_array_equal(again["margins"], alone["margins"])
    results = {tasks[0].name: res}
    for t in tasks[1:]:
        results[t.name] = probing.ftgd_unit(lm, t, cfg)
    transfers = {(a.name, b.name): probing.transfer_unit(lm, results[a.name], b, cfg) for a in tasks for b in tasks}
    out = probing.assemble(tasks, base, results, transfers, cfg)
    n = len(tasks)
    for key in ("T", "G", "J", "lift_per_tensor", "lift_uniform"):
        assert out[key].shape == (n, n), key
    np.testing.assert_allclose(np.diag(out["J"]), 1.0)
    np.testing.assert_allclose(np.diag(out["G"]), 1.0)
    assert out["T_first_order"] is None and set(out["curves"]) == {t.name for t in tasks}
    expect = transfers[("sv_a", "sv_b")]["mean_margin"] - base["sv_b"]["mean_margin"]
    assert out["T"][0, 1] == pytest.approx(expect)
    acc = probing.assemble(tasks, base, results, transfers, ProbeConfig(metric="accuracy", n_tune=8, n_eval=8))
    assert acc["metric"] == "accuracy" and np.all(np.abs(acc["T"]) <= 1)
    # a missing unit is NaN, not an error
    partial = probing.assemble(tasks, base, results, {k: v for k, v in transfers.items() if k[0] != "sv_a"}, cfg)
    assert np.isnan(partial["T"][0]).all() and np.isfinite(partial["T"][1:]).all()


def test_mask_jaccard_matches_packed_computation():
    from taskspace_core.spaces import jaccard_matrix

    lm = tiny_loaded_model("llama", seed=4)
    tasks = halves({k: v[:16] for k, v in toy_pairs().items()})[:3]
    cfg = FTGDConfig(mask_fraction=0.05, steps=1, sketch_dim=2**10)
    results = [ftgd.run_ftgd(lm, t.pairs, cfg) for t in tasks]
    np.testing.assert_allclose(probing.mask_jaccard(results), jaccard_matrix([r.packed_mask() for r in results]))


def test_probe_config_keys():
    cfg = ProbeConfig()
    assert cfg.key()["ftgd"] == FTGDConfig().key()
    other_metric = ProbeConfig(metric="accuracy")
    for kind in ("base", "ftgd", "transfer", "eval_gradient"):
        assert cfg.unit_key(kind) == other_metric.unit_key(kind)  # metric never recomputes a unit
    steps = ProbeConfig(ftgd=FTGDConfig(steps=10))
    assert steps.unit_key("base") == cfg.unit_key("base") and steps.unit_key("ftgd") != cfg.unit_key("ftgd")
    with pytest.raises(ProbeError, match="metric"):
        ProbeConfig(metric="f1")
    with pytest.raises(ProbeError, match="unit kind"):
        cfg.unit_key("space")


def streamed_tasks() -> list[Task]:
    """Tasks of different sentence lengths and sizes (so one stream mixes them in its batches)."""
    ph = toy_pairs()
    long = [
        MinimalPair(f"the {a} and the {b} and the {c} {vp} .", f"the {a} and the {b} and the {c} {v} .")
        for a, b, c, v, vp in zip(
            NOUNS, NOUNS[3:] + NOUNS[:3], NOUNS[5:] + NOUNS[:5], VERBS * 2, VERBS_PL * 2, strict=True
        )
    ]
    return [
        Task("sv", tuple(ph["sv"][:40]), category="sv"),  # 12 eval pairs, short
        Task("det", tuple(ph["det"][:15]), category="det"),  # 8 eval pairs (half-and-half split)
        Task("long", tuple(long), category="long"),  # 6 eval pairs, long sentences
        Task("refl", tuple(ph["refl"][:9]), category="refl"),  # 5 eval pairs
    ]


def _forward_passes(monkeypatch) -> list[int]:
    """Counts the scorer's packed forward passes (one entry per batch, its number of rows)."""
    from taskspace_core import scoring

    calls: list[int] = []
    real = scoring.token_logprobs

    def counted(model, batch, *a, **k):
        calls.append(batch.n_rows)
        return real(model, batch, *a, **k)

    monkeypatch.setattr(scoring, "token_logprobs", counted)
    return calls


def _same_unit(streamed: dict, alone: dict) -> None:
    assert streamed.keys() == alone.keys() and streamed["task"] == alone["task"]
    assert streamed["n"] == alone["n"] == len(alone["margins"]) and streamed["margins"].dtype == np.float64
    np.testing.assert_allclose(streamed["margins"], alone["margins"], rtol=0, atol=1e-4)
    assert streamed["mean_margin"] == pytest.approx(alone["mean_margin"], abs=1e-4)
    assert streamed["accuracy"] == alone["accuracy"] and streamed["ties"] == alone["ties"]


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox", "llama"])
def test_streamed_units_equal_per_unit_scoring(arch, monkeypatch):
    from taskspace_core.configs import ScoringConfig
    from taskspace_core.methods import UnitContext, kind
    from taskspace_core.methods.registry import Unit

    lm = tiny_loaded_model(arch, seed=1)
    tasks = streamed_tasks()
    fcfg = FTGDConfig(mask_fraction=0.05, steps=3, lr=3e-2, batch_size=4, mask_pairs=8, sketch_dim=2**10)
    # a token budget that holds one task's eval pairs but not all of them: per-unit pays a batch per task
    cfg = ProbeConfig(n_tune=6, n_eval=12, scoring=ScoringConfig(max_batch_tokens=256), ftgd=fcfg)
    res = probing.ftgd_unit(lm, tasks[0], cfg)
    passes = _forward_passes(monkeypatch)
    alone_base = [probing.base_unit(lm, t, cfg) for t in tasks]
    alone = [probing.transfer_unit(lm, res, t, cfg) for t in tasks]
    per_unit_passes = len(passes)
    del passes[:]
    base = probing.base_units(lm, tasks, cfg)
    row = probing.transfer_row(lm, res, tasks, cfg)
    assert 0 < len(passes) < per_unit_passes  # full batches shared across tasks
    assert not ftgd.any_applied(lm)
    for s, a in zip([*base, *row], [*alone_base, *alone], strict=True):
        _same_unit(s, a)
    # the update really is in the stream: tuning moved the tuned task's margins
    assert np.abs(row[0]["margins"] - base[0]["margins"]).max() > 1e-3
    # the runner's compute functions: one unit per (tuned, evaluated), values as above, time shared
    units = [Unit("transfer", f"k{j}", "sv", t.name) for j, t in enumerate(tasks)]
    ctx = UnitContext(lm, {t.name: t for t in tasks}, cfg, lambda k, t: res)
    out = list(kind("transfer").compute(ctx, units))
    assert [u for u, _, _ in out] == units and all(sec >= 0 for _, _, sec in out)
    for (_, value, _), a in zip(out, alone, strict=True):
        _same_unit(value, a)
    bunits = [Unit("base", f"b{j}", t.name) for j, t in enumerate(tasks)]
    for (u, value, _), a in zip(kind("base").compute(ctx, bunits), alone_base, strict=True):
        assert u.task == a["task"]
        _same_unit(value, a)
    assert probing.stream_margins(lm, [], cfg) == []
    with pytest.raises(ProbeError, match="margins given"):
        probing.transfer_unit(lm, res, tasks[1], cfg, margins=np.zeros(3))


# ----------------------------------------------------------------------------- SmolLM2 + BLiMP


def _blimp(names):
    if not BLIMP.is_dir():
        pytest.skip(f"BLiMP is not at {BLIMP}; put the 67 paradigm *.jsonl files there to run this test")
    from taskspace_core.tasks import load_blimp_dir

    return load_blimp_dir(BLIMP, names)


@pytest.fixture(scope="module")
def smollm2():
    from taskspace_core.models import ModelError, ModelSpec, load_model

    try:
        return load_model(ModelSpec("smollm2-135m"))
    except ModelError as e:
        pytest.skip(f"offline SmolLM2 unavailable: {e}")


@pytest.mark.slow
def test_smollm2_ftgd_raises_target_eval_margin(smollm2):
    task = _blimp(["anaphor_gender_agreement"]).tasks[0]
    cfg = ProbeConfig(n_eval=32, ftgd=FTGDConfig(steps=5, mask_pairs=16, lr=2e-4))
    before = probing.base_unit(smollm2, task, cfg)
    res = probing.ftgd_unit(smollm2, task, cfg)
    after = probing.transfer_unit(smollm2, res, task, cfg)
    assert after["mean_margin"] > before["mean_margin"] + 0.5
    assert res.n_masked == round(0.01 * res.n_selectable)


@pytest.mark.slow
def test_smollm2_paradigm_halves_are_nearest_in_profile_similarity(smollm2):
    names = [
        "anaphor_gender_agreement",
        "anaphor_number_agreement",
        "determiner_noun_agreement_1",
        "determiner_noun_agreement_2",
        "regular_plural_subject_verb_agreement_1",
        "regular_plural_subject_verb_agreement_2",
    ]
    ts = _blimp(names)
    tasks = list(ts.tasks[1:])
    first = ts.tasks[0]  # anaphor_gender_agreement, split into two halves by pair order
    ordered = sorted(first.pairs, key=lambda p: p.split_key(first.name))
    for part, sub in (("a", ordered[0::2]), ("b", ordered[1::2])):
        tasks.insert(0 if part == "a" else 1, Task(f"{first.name}_{part}", tuple(sub), category=first.category))
    cfg = ProbeConfig(
        n_tune=48, n_eval=16, ftgd=FTGDConfig(steps=4, lr=3e-4, mask_pairs=16, batch_size=8, sketch_dim=2**20)
    )
    t0 = time.perf_counter()
    space, _ = run_space(smollm2, tasks, cfg)
    # with the pair's own transfer in the profiles, each half is the other's nearest; without it
    # (the default) a half's nearest is still an anaphor paradigm (the other half or number agreement)
    S = symmetrise(space["T"], "profile", profile_diagonal="include")
    assert nearest(S)[0] == 1 and nearest(S)[1] == 0, (S.round(2), time.perf_counter() - t0)
    S = symmetrise(space["T"], "profile")
    assert nearest(S)[0] in (1, 2) and nearest(S)[1] in (0, 2), S.round(2)
    assert nearest(space["G"])[0] == 1 and nearest(space["G"])[1] == 0


def test_eval_gradient_unit_equals_a_plain_gradient_and_per_update_dots():
    # the in-place chunked gradient and the batched dots against autograd on all pairs at once
    import torch

    from taskspace_core.scoring import margins_with_grad

    lm = tiny_loaded_model("gpt2", seed=5)
    tasks = halves({k: v[:40] for k, v in toy_pairs().items()})[:3]
    cfg = ProbeConfig(n_tune=8, n_eval=12, ftgd=FTGDConfig(mask_fraction=0.05, steps=2, lr=1e-2, sketch_dim=2**10))
    results = {t.name: probing.ftgd_unit(lm, t, cfg) for t in tasks}
    unit = probing.eval_gradient_unit(lm, tasks[1], cfg, results)
    sel = ftgd.selectable_parameters(lm.model, cfg.ftgd.include_embeddings)
    params = [p for _, p in sel]
    with ftgd._grads_on(params):
        pairs = list(tasks[1].split(cfg.n_tune, cfg.n_eval)[1])
        assert len(pairs) == unit["n"] == 12  # more than one gradient chunk
        plain = torch.autograd.grad(margins_with_grad(lm, pairs).mean(), params, allow_unused=True)
    grads = {n: (torch.zeros_like(p) if g is None else g) for (n, p), g in zip(sel, plain, strict=True)}
    for name, r in results.items():
        want = sum(
            float(grads[t].reshape(-1)[torch.from_numpy(i.astype(np.int64))].double() @ torch.from_numpy(v).double())
            for t, (i, v) in r.delta.items()
            if len(i)
        )
        assert unit["dots"][name] == pytest.approx(want, rel=1e-4, abs=1e-9)
        assert probing.delta_dot(r, grads) == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert unit["grad_sq_norm"] == pytest.approx(sum(float((g.double() ** 2).sum()) for g in grads.values()), rel=1e-4)
