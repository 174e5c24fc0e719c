"""FTGD on tiny random-init models: masks, sparse tuning, exact restore, sketches, low-impact helpers."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from taskspace_core import ftgd
from taskspace_core.ftgd import FTGDConfig, FTGDError, applied, run_ftgd
from taskspace_core.scoring import PairScorer
from taskspace_core.tasks import MinimalPair
from tests.tiny_models import NOUNS, NOUNS_PL, VERBS, VERBS_PL, tiny_loaded_model

ARCHS = ["gpt2", "gpt_neox", "llama"]
PAIRS = [
    MinimalPair(f"the {n} {v} .", f"the {n} {vp} .")
    for n in NOUNS[:4]
    for v, vp in zip(VERBS[:4], VERBS_PL[:4], strict=True)
] + [
    MinimalPair(f"the {n} {vp} .", f"the {n} {v} .")
    for n in NOUNS_PL[:4]
    for v, vp in zip(VERBS, VERBS_PL, strict=True)
]
CFG = FTGDConfig(mask_fraction=0.05, steps=4, lr=1e-2, batch_size=4, mask_pairs=8, sketch_dim=2**12)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # fixture in conftest.py


def snapshot(lm) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in lm.model.state_dict().items()}


def assert_bit_identical(lm, snap) -> None:
    for k, v in lm.model.state_dict().items():
        assert torch.equal(v, snap[k]), f"{k} changed"


def nll_sum(lm, text: str) -> torch.Tensor:
    """Plain reference: summed NLL of one sentence, BOS prepended."""
    ids = [lm.bos_id, *lm.tokenizer(text, add_special_tokens=False)["input_ids"]]
    logits = lm.model(torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    return -sum(logp[t - 1, ids[t]] for t in range(1, len(ids)))


@pytest.mark.parametrize("arch", ARCHS)
def test_selectable_parameters_exclude_embeddings_and_head(arch):
    lm = tiny_loaded_model(arch)
    names = [n for n, _ in ftgd.selectable_parameters(lm.model)]
    everything = [n for n, _ in lm.model.named_parameters()]
    emb = lm.model.get_input_embeddings().weight
    head = lm.model.get_output_embeddings().weight
    by_id = {id(p) for _, p in ftgd.selectable_parameters(lm.model)}
    assert id(emb) not in by_id and id(head) not in by_id
    assert not any(s in n for n in names for s in ("wte", "wpe", "embed"))  # GPT-2 position embeddings too
    assert any(ftgd.layer_label(n) == "final" for n in names)  # the final norm is selectable
    assert all(ftgd.module_type(n) != "other" for n in names)
    with_emb = [n for n, _ in ftgd.selectable_parameters(lm.model, include_embeddings=True)]
    assert with_emb == everything and len(with_emb) > len(names)


@pytest.mark.parametrize("arch", ARCHS)
def test_only_masked_entries_change_and_model_is_restored(arch):
    lm = tiny_loaded_model(arch, seed=1)
    snap = snapshot(lm)
    ticks = []
    res = run_ftgd(lm, PAIRS, CFG, progress=ticks.append)
    assert len(ticks) == CFG.steps + 1
    assert_bit_identical(lm, snap)  # tuning leaves no trace
    assert all(not p.requires_grad and p.grad is None for p in lm.model.parameters())
    assert res.n_changed > 0 and res.n_changed <= res.n_masked
    params = dict(lm.model.named_parameters())
    with applied(lm, res):
        for name in res.names:
            now, before = params[name].detach().reshape(-1), snap[name].reshape(-1)
            changed = np.flatnonzero((now != before).numpy())
            assert set(changed) <= set(res.mask_indices(name).tolist())
            idx, vals = res.delta[name]
            np.testing.assert_array_equal(changed, idx)
            expect = before[torch.from_numpy(idx.astype(np.int64))] + torch.from_numpy(vals).float()
            assert torch.equal(now[torch.from_numpy(idx.astype(np.int64))], expect)  # base + fp16 delta
        for name in set(params) - set(res.names):  # embeddings and head untouched
            assert torch.equal(params[name].detach(), snap[name])
    assert_bit_identical(lm, snap)


def test_mask_fraction_and_exact_global_topk():
    lm = tiny_loaded_model("llama", seed=2)
    g = ftgd.task_gradient(lm, PAIRS, CFG)
    total = sum(t.numel() for t in g.values())
    mask = ftgd.select_mask(g, 0.03, "global")
    k = round(0.03 * total)
    assert sum(m.numel() for m in mask.values()) == k
    flat = torch.cat([t.reshape(-1).abs() for t in g.values()])
    kth = torch.topk(flat, k).values.min()
    chosen = torch.cat([g[n].reshape(-1)[mask[n]].abs() for n in g])
    assert float(chosen.min()) == float(kth)  # exactly the top-k (up to ties at the threshold)
    res = run_ftgd(lm, PAIRS, CFG)
    assert res.n_masked == round(CFG.mask_fraction * res.n_selectable)


def test_per_tensor_scope_keeps_the_fraction_in_every_tensor():
    lm = tiny_loaded_model("gpt_neox", seed=3)
    cfg = FTGDConfig(**{**CFG.to_dict(), "mask_scope": "per_tensor"})
    res = run_ftgd(lm, PAIRS, cfg)
    for name in res.names:
        assert res.counts_per_tensor[name] == round(cfg.mask_fraction * res.tensor_sizes[name])
        assert res.mask_bool(name).sum() == res.counts_per_tensor[name]
    dist = np.array(res.mask_distribution["counts"])
    assert dist.sum() == res.n_masked


def test_per_step_mask_update_changes_only_the_union_of_masks():
    lm = tiny_loaded_model("llama", seed=4)
    snap = snapshot(lm)
    cfg = FTGDConfig(**{**CFG.to_dict(), "mask_update": "per_step"})
    res = run_ftgd(lm, PAIRS, cfg)
    assert_bit_identical(lm, snap)
    k = round(cfg.mask_fraction * res.n_selectable)
    assert res.n_masked >= k  # union of per-step masks
    fixed = run_ftgd(lm, PAIRS, CFG)
    assert res.n_masked > fixed.n_masked
    for name in res.names:
        assert set(res.delta[name][0].tolist()) <= set(res.mask_indices(name).tolist())


def test_logistic_and_diff_losses():
    lm = tiny_loaded_model("gpt2", seed=5)
    runs = {}
    base = PairScorer(lm).score_pairs(PAIRS).margins.mean()
    for loss in ("diff", "logistic"):
        cfg = FTGDConfig(**{**CFG.to_dict(), "loss": loss})
        runs[loss] = res = run_ftgd(lm, PAIRS, cfg)
        with applied(lm, res):
            assert PairScorer(lm).score_pairs(PAIRS).margins.mean() > base  # the tune margin rises
    diff, logi = runs["diff"], runs["logistic"]
    np.testing.assert_allclose(diff.curve["loss"], -np.array(diff.curve["mean_margin"]), rtol=1e-6)
    # logistic loss = mean softplus(-margin) >= softplus(-mean margin) > 0 (Jensen)
    assert all(x > 0 for x in logi.curve["loss"])
    first = [math.log1p(math.exp(-m)) for m in logi.curve["mean_margin"]]
    assert all(a >= b - 1e-6 for a, b in zip(logi.curve["loss"], first, strict=True))
    # same mask (it comes from the diff gradient) but different updates
    name = max(diff.names, key=lambda n: diff.counts_per_tensor[n])
    np.testing.assert_array_equal(diff.mask_indices(name), logi.mask_indices(name))
    assert not np.array_equal(diff.delta[name][1], logi.delta[name][1])


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox"])
def test_task_gradient_is_the_gradient_differential(arch):
    lm = tiny_loaded_model(arch, seed=6)
    pairs = PAIRS[:3]
    g = ftgd.task_gradient(lm, pairs, FTGDConfig(mask_pairs=3))
    sel = dict(ftgd.selectable_parameters(lm.model))
    params = list(sel.values())
    with ftgd._grads_on(params):
        loss = sum(nll_sum(lm, p.good) - nll_sum(lm, p.bad) for p in pairs) / len(pairs)
        ref = torch.autograd.grad(loss, params)
    for (name, _), r in zip(sel.items(), ref, strict=True):
        torch.testing.assert_close(g[name], r, atol=1e-5, rtol=1e-4)


def test_sketch_cosine_matches_exact_cosine():
    # Many entries per bucket (4M entries, 2**18 buckets: 16 per bucket, like SmolLM2's 25 at
    # 2**22), spread over differently shaped tensors. Expected standard error sqrt((1+c^2)/D) <= 0.0028.
    gen = torch.Generator().manual_seed(0)
    shapes = {f"model.layers.{i}.mlp.w{i}.weight": (256 + 64 * i, 1000 + 37 * i) for i in range(12)}
    a = {n: torch.randn(s, generator=gen) * (1 + i % 3) for i, (n, s) in enumerate(shapes.items())}
    b = {n: 0.6 * a[n] + torch.randn(a[n].shape, generator=gen) for n in shapes}
    fa, fb = (torch.cat([t.reshape(-1) for t in x.values()]).double() for x in (a, b))
    exact = float(fa @ fb / fa.norm() / fb.norm())
    sa, sb = ftgd.gradient_sketch(a, 2**18), ftgd.gradient_sketch(b, 2**18)
    est = float(np.dot(sa, sb) / np.linalg.norm(sa) / np.linalg.norm(sb))
    assert abs(est - exact) < 0.01
    # linear and deterministic (same hash for every task)
    np.testing.assert_allclose(ftgd.gradient_sketch({n: a[n] + b[n] for n in a}, 2**18), sa + sb, atol=1e-3)
    np.testing.assert_array_equal(ftgd.gradient_sketch(a, 2**18), sa)


def test_sketch_cosine_on_tiny_model_tasks():
    lm = tiny_loaded_model("llama", seed=7, hidden=64)
    cfg = FTGDConfig(**{**CFG.to_dict(), "steps": 1, "sketch_dim": 2**14})
    half = len(PAIRS) // 2
    r1, r2 = run_ftgd(lm, PAIRS[:half], cfg), run_ftgd(lm, PAIRS[half:], cfg)
    g1, g2 = ftgd.task_gradient(lm, PAIRS[:half], cfg), ftgd.task_gradient(lm, PAIRS[half:], cfg)
    f1, f2 = (torch.cat([t.reshape(-1) for t in g.values()]).double() for g in (g1, g2))
    exact = float(f1 @ f2 / f1.norm() / f2.norm())
    assert abs(ftgd.sketch_cosine(r1, r2) - exact) < 0.01  # fp16-stored sketches
    assert r1.grad_sq_norm == pytest.approx(float(f1 @ f1), rel=1e-6)
    G = ftgd.gradient_similarity([r1, r2, r1])
    assert G.shape == (3, 3) and G[0, 2] == pytest.approx(1.0)


def test_cached_result_gives_identical_numbers_after_pickling():
    lm = tiny_loaded_model("gpt_neox", seed=8)
    res = run_ftgd(lm, PAIRS, CFG)
    scorer = PairScorer(lm)
    base = scorer.score_pairs(PAIRS).margins
    with applied(lm, res):
        tuned = scorer.score_pairs(PAIRS).margins
    again = pickle.loads(pickle.dumps(res))
    with applied(lm, again):
        cached = scorer.score_pairs(PAIRS).margins
        assert ftgd.is_applied(lm, again) and not ftgd.is_applied(lm, res)
    np.testing.assert_array_equal(tuned, cached)
    assert not np.array_equal(tuned, base)
    np.testing.assert_array_equal(scorer.score_pairs(PAIRS).margins, base)
    assert not ftgd.any_applied(lm)


def test_applied_restores_on_error_and_nests():
    lm = tiny_loaded_model("llama", seed=9)
    snap = snapshot(lm)
    r1 = run_ftgd(lm, PAIRS[:8], CFG)
    r2 = run_ftgd(lm, PAIRS[8:], CFG)
    with pytest.raises(RuntimeError), applied(lm, r1):
        raise RuntimeError("boom")
    assert_bit_identical(lm, snap)
    with applied(lm, r1), applied(lm, r2):
        assert ftgd.is_applied(lm, r1) and ftgd.is_applied(lm, r2)
    assert_bit_identical(lm, snap)
    other = tiny_loaded_model("llama", seed=10)
    with pytest.raises(FTGDError, match="another model"), applied(other, r1):
        pass


def test_result_is_compact_and_masks_decode():
    lm = tiny_loaded_model("gpt2", seed=11)
    res = run_ftgd(lm, PAIRS, CFG)
    name = max(res.names, key=lambda n: res.counts_per_tensor[n])
    bits = res.mask_bool(name)
    assert bits.sum() == res.counts_per_tensor[name]
    packed = res.packed_mask()
    assert packed.dtype == np.uint8 and np.unpackbits(packed).sum() == res.n_masked
    idx, vals = res.delta[name]
    assert idx.dtype == np.int32 and vals.dtype == np.float16 and np.all(np.diff(idx) > 0)
    assert res.sketch.dtype == np.float16 and res.sketch.size == CFG.sketch_dim
    assert len(pickle.dumps(res)) < 2 * res.nbytes() + 20_000


def test_config_validation_and_key():
    with pytest.raises(FTGDError, match="mask_scope"):
        FTGDConfig(mask_scope="layer")
    with pytest.raises(FTGDError, match="loss"):
        FTGDConfig(loss="hinge")
    key = FTGDConfig().key()
    assert key["mask_fraction"] == 0.01 and key["version"] == FTGDConfig.VERSION and key["steps"] == 20
    assert FTGDConfig(steps=10).key() != key


def test_lm_loss_and_conventional_baseline_restore():
    lm = tiny_loaded_model("llama", seed=12)
    snap = snapshot(lm)
    texts = [p.good for p in PAIRS]
    before = ftgd.lm_loss(lm, texts)
    with ftgd.conventional_finetune(lm, PAIRS, steps=5, lr=1e-2, batch_size=8) as info:
        assert len(info["loss"]) == 5
        assert ftgd.lm_loss(lm, texts) < before
    assert_bit_identical(lm, snap)
    assert ftgd.lm_loss(lm, texts) == before


def test_include_embeddings_tunes_the_tied_embedding_matrix():
    lm = tiny_loaded_model("llama", seed=13)  # tied: the head is the input embedding
    snap = snapshot(lm)
    cfg = FTGDConfig(**{**CFG.to_dict(), "include_embeddings": True})
    res = run_ftgd(lm, PAIRS, cfg)
    assert "model.embed_tokens.weight" in res.names and res.mask_distribution["layers"][0] == "embed"
    assert res.n_selectable == sum(p.numel() for p in lm.model.parameters())
    with applied(lm, res):
        pass
    assert_bit_identical(lm, snap)


def test_cpu_threads_restores_the_setting():
    before = torch.get_num_threads()
    with ftgd.cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def reference_masked_adam(lm, pairs, cfg: FTGDConfig, masks: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Plain reference: ``torch.optim.Adam`` on the full tensors, gradients (of the plainly computed
    batch loss) multiplied by the mask, clipped by ``clip_grad_norm_``; the parameters after each step."""
    params = dict(lm.model.named_parameters())
    tensors = [params[n] for n in masks]
    with ftgd._grads_on(tensors):
        opt = torch.optim.Adam(tensors, lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
        batches = ftgd.tune_batches(len(pairs), cfg.batch_size, cfg.seed)
        after = []
        for _ in range(cfg.steps):
            batch = [pairs[i] for i in next(batches)]
            opt.zero_grad()
            loss = sum(nll_sum(lm, p.good) - nll_sum(lm, p.bad) for p in batch) / len(batch)
            loss.backward()
            for t, m in zip(tensors, masks.values(), strict=True):
                t.grad.mul_(m)
            torch.nn.utils.clip_grad_norm_(tensors, cfg.grad_clip)
            opt.step()
            after.append(snapshot(lm))
    return after


@pytest.mark.parametrize(("arch", "grad_clip"), [("llama", 0.05), ("gpt2", 100.0)])
def test_masked_adam_equals_torch_adam_restricted_to_the_mask(arch, grad_clip):
    cfg = FTGDConfig(**{**CFG.to_dict(), "steps": 5, "lr": 1e-2, "grad_clip": grad_clip})
    lm = tiny_loaded_model(arch, seed=14)
    snap = snapshot(lm)
    seen = []  # the model's parameters at each progress tick: after the mask, then after each step
    res = run_ftgd(lm, PAIRS, cfg, progress=lambda _: seen.append(snapshot(lm)))
    assert len(seen) == cfg.steps + 1
    clipped = [n > grad_clip for n in res.curve["grad_norm"]]
    assert all(clipped) if grad_clip < 1 else not any(clipped)  # both sides of the clip are exercised
    masks = {n: torch.from_numpy(res.mask_bool(n)).reshape(snap[n].shape) for n in res.names}
    ref = reference_masked_adam(tiny_loaded_model(arch, seed=14), PAIRS, cfg, masks)
    for step, (ours, theirs) in enumerate(zip(seen[1:], ref, strict=True), start=1):
        for name, base in snap.items():
            m = masks.get(name, torch.zeros_like(base, dtype=torch.bool))
            assert torch.equal(ours[name][~m], base[~m]), f"step {step}: {name} changed outside the mask"
            assert torch.equal(theirs[name][~m], base[~m])
            torch.testing.assert_close(ours[name][m], theirs[name][m], atol=1e-6, rtol=0, msg=f"step {step} {name}")
    moved = max(float((seen[-1][n] - snap[n]).abs().max()) for n in res.names)
    assert moved > 100 * 1e-6  # the updates are far larger than the tolerance


def assert_top_k_by_value(scores: dict[str, torch.Tensor], kept: dict[str, np.ndarray], groups: list[list[str]], k_of):
    """In each group of tensors, the kept entries' |values| are exactly the k largest |values|."""
    for names in groups:
        flat = torch.cat([scores[n].reshape(-1).abs() for n in names])
        k = k_of(flat.numel())
        got = torch.cat([scores[n].reshape(-1)[torch.as_tensor(kept[n], dtype=torch.long)].abs() for n in names])
        assert got.numel() == k > 0
        assert torch.equal(torch.sort(got, descending=True).values, torch.sort(flat, descending=True).values[:k])
        for n in names:
            idx = np.asarray(kept[n])
            assert np.all(np.diff(idx) > 0), "indices sorted, no repeats"


@pytest.mark.parametrize("scope", ["global", "per_tensor"])
def test_masks_keep_exactly_the_largest_gradient_entries(scope):
    lm = tiny_loaded_model("gpt_neox", seed=15)
    cfg = FTGDConfig(**{**CFG.to_dict(), "mask_scope": scope, "steps": 1})
    res = run_ftgd(lm, PAIRS, cfg)  # the stored mask of a real run, against g_task computed apart
    g = ftgd.task_gradient(lm, PAIRS, cfg)
    groups = [list(g)] if scope == "global" else [[n] for n in g]
    stored = {n: res.mask_indices(n) for n in res.names}
    assert_top_k_by_value(g, stored, groups, lambda size: round(cfg.mask_fraction * size))
    # many exact ties (values on a coarse grid) and a larger fraction: still the k largest by value
    gen = torch.Generator().manual_seed(1)
    tied = {f"t{i}": torch.randint(-40, 41, (50 + 17 * i, 30), generator=gen).float() / 8 for i in range(5)}
    for fraction in (0.01, 0.3):
        mask = {n: m.numpy() for n, m in ftgd.select_mask(tied, fraction, scope).items()}
        groups = [list(tied)] if scope == "global" else [[n] for n in tied]
        assert_top_k_by_value(tied, mask, groups, lambda size, f=fraction: round(f * size))
