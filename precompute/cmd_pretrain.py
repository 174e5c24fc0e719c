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
    from taskspace_core.pretrain_presets import PRESETS

    d = PretrainConfig()
    p = sub.add_parser("pretrain", help="train a small GPT-2 suite (sizes x checkpoints) on a text corpus")
    p.add_argument(
        "--preset", choices=sorted(PRESETS), default=None,
        help="a named budget that sets corpus, sizes, steps, batch, context, lr, vocab, bf16, checkpoints and "
        "threads (flags given as well override it): 'learns' = three sizes (0.22M-4.7M non-embedding) on "
        "brown+nlp-corpus, 6.3M tokens each, 64-token packed blocks, 4k BPE, bf16 where the CPU has it, 10 "
        "log-spaced checkpoints with BLiMP scored at each, sizes side by side, 46 min measured on a quiet 2-core "
        "CPU; 'gpu' = the paper's sizes (27M, 70M, 203M parameters) for a GPU box (see --dry-run for its time)",
    )  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="print the plan (params, tokens, FLOPs, time); no training")
    p.add_argument("--corpus", default=None, help="a UTF-8 text file (documents split by blank lines), 'brown', "
                   "'nlp-corpus', or several joined by '+' (e.g. brown+nlp-corpus+my.txt); default brown")  # fmt: skip
    p.add_argument("--sizes", default=None, help=f"comma list of {', '.join(SIZES)} or name=LxDxH")
    p.add_argument("--steps", type=int, default=None, help=f"optimiser steps per size (default {d.steps})")
    p.add_argument("--checkpoints", default="", help="steps to save at, e.g. 0,10,100 or log:8 (default: log-spaced)")
    p.add_argument("--batch-size", type=int, default=None, help=f"sequences per step (default {d.batch_size})")
    p.add_argument("--context", type=int, default=None, help=f"tokens per sequence (default {d.context})")
    p.add_argument("--lr", type=float, default=None, help=f"peak lr at width 128, scaled by 128/width (default {d.lr})")
    p.add_argument("--warmup-steps", type=int, default=None, help=f"linear warm-up steps (default {d.warmup_steps})")
    p.add_argument("--vocab-size", type=int, default=None, help=f"BPE vocabulary (default {d.vocab_size})")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast in training")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=None, help="output directory (default <cache>/suite, i.e. cache/suite)")
    p.add_argument("--device", default=None, help="auto (a CUDA GPU if there is one) | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads per process (0: torch default; with workers: cores / workers)")  # fmt: skip
    p.add_argument("--workers", type=int, default=None,
                   help="train sizes side by side in this many processes (0: one per available core, up to the "
                   "number of sizes; the 'learns' preset's default; otherwise 1)")  # fmt: skip
    p.add_argument("--deterministic", action="store_true", help="torch.use_deterministic_algorithms (bit-exact resume)")
    p.add_argument("--eval", action=argparse.BooleanOptionalAction, default=None,
                   help="score agreement paradigms at every checkpoint into suite.json (on with a preset)")  # fmt: skip
    p.add_argument("--eval-blimp", default=None, metavar="DIR",
                   help="BLiMP folder for --eval (default ../shared/blimp if there, else built-ins)")  # fmt: skip
    p.add_argument("--eval-pairs", type=int, default=200, help="pairs per paradigm for --eval (default 200)")
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


def write_config(suite: dict, out: Path, path: Path, tasks: list[str], preset: str | None = None) -> None:
    """A run config over every checkpoint of every size (one flow-style line per model)."""
    from taskspace_core.pretrain import suite_config

    name, series = ("mini_suite", "mini-suite") if preset is None else (f"mini_suite_{preset}", f"mini-suite-{preset}")
    cfg = suite_config(suite, out, tasks, name=name, series=series)
    shown_out = cfg["models"][0]["name"].rsplit("/", 2)[0]
    how = "--corpus brown" if preset is None else f"--preset {preset}"
    lines = [
        f"# The offline model suite: every checkpoint of every size pretrained ({how}) by",
        f"#   python -m precompute pretrain {how} --out {shown_out} --write-config {path}",
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


def _settings(args: argparse.Namespace):
    """(config, sizes, corpus spec, device, threads, evaluate?) from the preset and the flags over it."""
    from dataclasses import replace

    from taskspace_core.pretrain import SIZES, PretrainConfig, parse_checkpoints, parse_sizes
    from taskspace_core.pretrain_presets import PRESETS

    preset = PRESETS.get(args.preset) if args.preset else None
    base = preset.config if preset else PretrainConfig()
    given = {"steps": args.steps, "batch_size": args.batch_size, "context": args.context, "lr": args.lr,
             "warmup_steps": args.warmup_steps, "vocab_size": args.vocab_size, "bf16": args.bf16}  # fmt: skip
    over = {k: v for k, v in given.items() if v is not None}
    steps = over.get("steps", base.steps)
    if args.checkpoints or "steps" in over:  # other steps: the preset's log-spaced set is redone for them
        n = len(base.checkpoints) if preset else 7
        over["checkpoints"] = parse_checkpoints(args.checkpoints or f"log:{n}", steps)
    cfg = replace(base, seed=args.seed, **over)
    sizes = parse_sizes(args.sizes) if args.sizes else list(preset.sizes if preset else SIZES.values())
    corpus = args.corpus or (preset.corpus if preset else "brown")
    device = args.device or (preset.device if preset else "auto")
    threads = args.threads if args.threads is not None else (preset.threads if preset else 0)
    evaluate = args.eval if args.eval is not None else bool(preset and preset.evaluate)
    return preset, cfg, sizes, corpus, device, threads, evaluate


def _workers(args: argparse.Namespace, preset, n_sizes: int, device_type: str, threads: int) -> tuple[int, int]:
    """(processes, torch threads each): 0 workers = one per available core, up to the number of sizes."""
    from taskspace_core.threads import available_cpus, cgroup_cpu_limit

    workers = args.workers if args.workers is not None else (preset.workers if preset else 1)
    if device_type != "cpu":
        return max(1, workers), threads
    cores = available_cpus(quota=cgroup_cpu_limit())
    if workers == 0:
        workers = min(n_sizes, cores)
    workers = max(1, min(workers, n_sizes))
    if workers == 1:
        return 1, threads
    return workers, args.threads if args.threads else max(1, cores // workers)


def _evaluator(args: argparse.Namespace):
    from taskspace_core.pretrain_eval import CheckpointEvaluator, eval_tasks

    blimp = args.eval_blimp or ("../shared/blimp" if Path("../shared/blimp").is_dir() else None)
    tasks = eval_tasks(blimp, pairs=args.eval_pairs)
    src = f"BLiMP in {blimp}" if blimp else "built-in paradigms (no BLiMP folder)"
    print(f"scoring {len(tasks)} paradigms x {args.eval_pairs} pairs at every checkpoint ({src})")
    return CheckpointEvaluator(tasks)


def run(args: argparse.Namespace) -> int:
    import time

    import torch

    from taskspace_core.corpus import resolve_corpus
    from taskspace_core.pretrain import pretrain, read_suite
    from taskspace_core.pretrain_presets import CPU_FLOPS, PRESETS, Preset, format_plan, planned_suite

    out = Path(args.out) if args.out else suite_dir()
    if args.preset and not args.out:  # another budget, another folder (resume refuses other settings)
        out = out.with_name(f"{out.name}-{args.preset}")
    tasks = args.tasks or default_tasks()
    if args.config_only:
        if not args.write_config:
            raise ValueError("--config-only needs --write-config YAML")
        suite = read_suite(out) or (planned_suite(PRESETS[args.preset]) if args.preset else {})
        if not suite:
            raise FileNotFoundError(f"{out / 'suite.json'} does not exist: run pretrain first")
        write_config(suite, out, Path(args.write_config), tasks, args.preset)
        return 0
    preset, cfg, sizes, corpus_spec, device_spec, threads, evaluate = _settings(args)
    from taskspace_core.models import resolve_device

    if args.dry_run:
        rate = preset.flops_per_second if preset else CPU_FLOPS
        name, about = (preset.name, preset.about) if preset else ("custom", "")
        shown = Preset(name, tuple(sizes), cfg, corpus_spec, threads, device_spec, rate, evaluate, about,
                       args.workers if args.workers is not None else (preset.workers if preset else 1))  # fmt: skip
        dev = resolve_device("auto").type if device_spec == "auto" else device_spec.split(":")[0]  # no GPU needed
        print(format_plan(shown, workers=_workers(args, preset, len(sizes), dev, threads)[0]))
        return 0
    device = resolve_device(device_spec)
    workers, threads = _workers(args, preset, len(sizes), device.type, threads)
    if threads:
        torch.set_num_threads(threads)
    if args.deterministic:
        torch.use_deterministic_algorithms(True)
    corpus = resolve_corpus(corpus_spec)
    evaluator = _evaluator(args) if evaluate else None
    where = f"{torch.get_num_threads()} CPU threads" if device.type == "cpu" else str(device)
    if workers > 1:
        where = f"{workers} processes x {where}"
    print(f"pretraining {', '.join(s.name for s in sizes)} on {corpus} into {out} ({where})")
    t0 = time.perf_counter()
    suite = pretrain(corpus, sizes, cfg, out, device=device, evaluate=evaluator, workers=workers,
                     threads=torch.get_num_threads(), deterministic=args.deterministic)  # fmt: skip
    print(f"wall time {(time.perf_counter() - t0) / 60:.1f} min")
    print(f"\nsuite: {len(suite['checkpoints'])} checkpoints listed in {out / 'suite.json'}")
    if args.write_config:
        write_config(suite, out, Path(args.write_config), tasks, args.preset)
    return 0
