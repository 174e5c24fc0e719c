"""Pieces several commands share: model arguments, tables."""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from taskspace_core.configs import OFFLINE_DEFAULT, ModelSpec


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=OFFLINE_DEFAULT, help=f"hub name or local path (default {OFFLINE_DEFAULT})")
    p.add_argument("--revision", default=None, help="hub revision, e.g. a Pythia checkpoint 'step1000'")
    p.add_argument("--step0", action="store_true", help="same architecture with seeded random weights")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")


def model_spec(args: argparse.Namespace) -> ModelSpec:
    return ModelSpec(args.model, args.revision, args.dtype, args.device, step0=args.step0)


def fingerprint_or_load(spec: ModelSpec) -> tuple[str, Any]:
    """The model's weight fingerprint and the loaded model, or None when a remembered fingerprint
    spares loading it (a cache hit then never imports torch)."""
    from taskspace_core.model_files import cached_fingerprint

    fingerprint = cached_fingerprint(spec)
    if fingerprint is not None:
        return fingerprint, None
    from taskspace_core.models import load_model  # torch: only where a model is needed

    loaded = load_model(spec)
    return loaded.fingerprint, loaded


def table(df: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    return df.to_string(index=False, float_format=lambda x: floatfmt.format(x))
