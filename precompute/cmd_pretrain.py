"""``pretrain``: train an offline model suite (sizes x checkpoints) from scratch on a text corpus."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from taskspace_core.paths import suite_dir

# Agreement-heavy built-in paradigms for configs/mini_suite.yaml: three categories of three,
# so the within-category statistics of the size and checkpoint views have something to find.
MINI_SUITE_PARADIGMS = (
    "anaphor_number", "anaphor_gender_noun", "anaphor_gender_name",
    "demonstrative_noun_number", "demonstrative_number_det", "demonstrative_adjective_noun",
    "sva_verb_changes", "sva_noun_changes", "sva_attractor_of_phrase",
)  # fmt: skip
# Used when the built-in suite is missing: BLiMP paradigms of the same three categories.
MINI_SUITE_BLIMP = (
    "anaphor_number_agreement", "anaphor_gender_agreement",
    "determiner_noun_agreement_1", "determiner_noun_agreement_2", "determiner_noun_agreement_with_adjective_1",
    "regular_plural_subject_verb_agreement_1", "regular_plural_subject_verb_agreement_2",
    "distractor_agreement_relational_noun",
)  # fmt: skip


def default_tasks() -> list[str]:
    """``builtin:<the nine paradigms>``, or the BLiMP fallback if the built-in suite lacks any of them."""
    try:
        from taskspace_core.builtin import paradigm_names

        have = set(paradigm_names())
    except ImportError:
        have = set()
    if set(MINI_SUITE_PARADIGMS) <= have:
        return ["builtin:" + ",".join(MINI_SUITE_PARADIGMS)]
    return ["blimp:../shared/blimp:" + ",".join(MINI_SUITE_BLIMP)]


def register(sub: argparse._SubParsersAction) -> None:
    from taskspace_core.pretrain import SIZES, PretrainConfig

    d = PretrainConfig()
    p = sub.add_parser("pretrain", help="train a small GPT-2 suite (sizes x checkpoints) on a text corpus")
    p.add_argument("--corpus", default="brown", help="a UTF-8 text file (documents split by blank lines) or 'brown'")
    p.add_argument("--sizes", default=",".join(SIZES), help=f"comma list of {', '.join(SIZES)} or name=LxDxH")
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps per size (default {d.steps})")
    p.add_argument("--checkpoints", default="", help="steps to save at, e.g. 0,10,100 or log:8 (default: log-spaced)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"sequences per step (default {d.batch_size})")
    p.add_argument("--context", type=int, default=d.context, help=f"tokens per sequence (default {d.context})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak lr at width 128, scaled by 128/width (default {d.lr})")
    p.add_argument("--vocab-size", type=int, default=d.vocab_size, help=f"BPE vocabulary (default {d.vocab_size})")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=None, help="output directory (default <cache>/suite, i.e. cache/suite)")
    p.add_argument("--device", default="auto", help="auto (a CUDA GPU if there is one) | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--deterministic", action="store_true", help="torch.use_deterministic_algorithms (bit-exact resume)")
    p.add_argument("--write-config", default=None, metavar="YAML", help="also write a run config over all checkpoints")
    p.add_argument("--tasks", action="append", default=None, help="task source(s) for --write-config")
    p.add_argument(
        "--config-only", action="store_true", help="with --write-config: write it from suite.json, no training"
    )
    p.set_defaults(func=run)


# The probing switches of configs/default.yaml (METHODS.md s5b's "fair CPU default": 48 tune and
# eval pairs, 10 FTGD steps at lr 2e-4), so the suite analysis fits a CPU; float32 because the
# models are small and FTGD's 1e-4-scale sparse updates should not drown in bf16 rounding.
SUITE_SWITCHES = {
    "probe": {"n_tune": 48, "n_eval": 48, "metric": "mean_margin", "transfer": "exact"},
    "scoring": {"reduction": "sum"},
    "ftgd": {"mask_fraction": 0.01, "mask_pairs": 32, "steps": 10, "lr": 2.0e-4, "batch_size": 8},
    "device": "auto",
    "dtype": "float32",
}


def write_config(suite: dict, out: Path, path: Path, tasks: list[str]) -> None:
    """A run config over every checkpoint of every size (one flow-style line per model)."""
    from taskspace_core.pretrain import suite_config

    cfg = suite_config(suite, out, tasks)
    shown_out = cfg["models"][0]["name"].rsplit("/", 2)[0]
    lines = [
        "# The offline model suite: every checkpoint of every size pretrained on Brown by",
        f"#   python -m precompute pretrain --corpus brown --out {shown_out} --write-config {path}",
        "# with the default probing analysis (FTGD, transfer and gradient similarity). Run it with",
        f"#   python -m precompute run --config {path}",
        "# from the repository root (model paths are relative to it). See docs/PRETRAIN.md.",
        f"name: {cfg['name']}",
        f"series: {cfg['series']}",
        "models:",
        *(f"  - {{name: {m['name']}, size: {m['size']}, step: {m['step']}}}" for m in cfg["models"]),
    ]
    rest = {"tasks": cfg["tasks"], "methods": cfg["methods"], **SUITE_SWITCHES}
    text = "\n".join(lines) + "\n" + yaml.safe_dump(rest, sort_keys=False, width=400)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}: {len(cfg['models'])} models, series '{cfg['series']}'")


def run(args: argparse.Namespace) -> int:
    import torch

    from taskspace_core.corpus import resolve_corpus
    from taskspace_core.models import resolve_device
    from taskspace_core.pretrain import PretrainConfig, parse_checkpoints, parse_sizes, pretrain, read_suite

    out = Path(args.out) if args.out else suite_dir()
    tasks = args.tasks or default_tasks()
    if args.config_only:
        if not args.write_config:
            raise ValueError("--config-only needs --write-config YAML")
        suite = read_suite(out)
        if not suite:
            raise FileNotFoundError(f"{out / 'suite.json'} does not exist: run pretrain first")
        write_config(suite, out, Path(args.write_config), tasks)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.deterministic:
        torch.use_deterministic_algorithms(True)
    cfg = PretrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        context=args.context,
        lr=args.lr,
        vocab_size=args.vocab_size,
        seed=args.seed,
        checkpoints=parse_checkpoints(args.checkpoints, args.steps),
    )
    sizes = parse_sizes(args.sizes)
    corpus = resolve_corpus(args.corpus)
    device = resolve_device(args.device)
    where = f"{torch.get_num_threads()} CPU threads" if device.type == "cpu" else str(device)
    print(f"pretraining {', '.join(s.name for s in sizes)} on {corpus} into {out} ({where})")
    suite = pretrain(corpus, sizes, cfg, out, device=device)
    print(f"\nsuite: {len(suite['checkpoints'])} checkpoints listed in {out / 'suite.json'}")
    if args.write_config:
        write_config(suite, out, Path(args.write_config), tasks)
    return 0
