"""Run configs (YAML): model specs, task sources, methods and switches."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from taskspace_core.models import ModelSpec
from taskspace_core.store import canonical

METHODS = ("transfer", "gradient")


class ConfigError(ValueError):
    """A config file that cannot be run; the message names the field."""


@dataclass(frozen=True)
class ModelEntry:
    """A model of the run, placed in a series by its size label and training step."""

    spec: ModelSpec
    size: str = ""
    step: int | None = None


@dataclass(frozen=True)
class RunConfig:
    name: str
    series: str
    models: tuple[ModelEntry, ...]
    tasks: tuple[str, ...]
    methods: tuple[str, ...]
    probe: dict[str, Any]
    scoring: dict[str, Any]
    ftgd: dict[str, Any]
    raw: dict[str, Any]

    def probe_config(self):
        """The frozen ProbeConfig this run uses (imported lazily: it pulls in torch)."""
        from taskspace_core.ftgd import FTGDConfig
        from taskspace_core.probing import ProbeConfig
        from taskspace_core.scoring import ScoringConfig

        try:
            return ProbeConfig(scoring=ScoringConfig(**self.scoring), ftgd=FTGDConfig(**self.ftgd), **self.probe)
        except TypeError as e:
            names = {
                "probe": [f.name for f in fields(ProbeConfig)],
                "ftgd": [f.name for f in fields(FTGDConfig)],
                "scoring": [f.name for f in fields(ScoringConfig)],
            }
            raise ConfigError(f"{e}; known fields: {names}") from e

    def digest(self) -> str:
        """Hash of everything but names and device placement: same numbers, same digest."""
        core = {k: self.raw.get(k) for k in ("models", "tasks", "methods", "probe", "scoring", "ftgd")}
        return hashlib.sha256(canonical(core).encode()).hexdigest()[:16]


def _model(i: int, m: Any, device: str, dtype: str) -> ModelEntry:
    if isinstance(m, str):
        m = {"name": m}
    if not isinstance(m, dict) or not m.get("name"):
        raise ConfigError(f"models[{i}]: needs at least 'name' (a hub name, a local path or smollm2-135m)")
    unknown = set(m) - {"name", "revision", "size", "step", "step0", "seed", "dtype", "device"}
    if unknown:
        raise ConfigError(f"models[{i}]: unknown field(s) {', '.join(sorted(unknown))}")
    spec = ModelSpec(
        str(m["name"]),
        m.get("revision"),
        dtype=str(m.get("dtype", dtype)),
        device=str(m.get("device", device)),
        step0=bool(m.get("step0", False)),
        seed=int(m.get("seed", 0)),
    )
    step = m.get("step")
    return ModelEntry(spec, str(m.get("size", "")), int(step) if step is not None else None)


def parse_config(raw: dict[str, Any], name: str = "config", device: str | None = None) -> RunConfig:
    """Validate a config dict; ``device`` overrides the file's device (e.g. --device cuda:1)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: the file must hold a mapping (models:, tasks:, ...)")
    unknown = set(raw) - {"name", "series", "models", "tasks", "methods", "probe", "scoring", "ftgd", "device", "dtype"}
    if unknown:
        raise ConfigError(f"{name}: unknown top-level field(s) {', '.join(sorted(unknown))}")
    dev = device or str(raw.get("device", "auto"))
    models = raw.get("models") or []
    if not models:
        raise ConfigError(f"{name}: 'models' lists no model")
    tasks = raw.get("tasks") or []
    if isinstance(tasks, str):
        tasks = [tasks]
    if not tasks:
        raise ConfigError(f"{name}: 'tasks' lists no task source")
    methods = tuple(raw.get("methods") or METHODS)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ConfigError(f"{name}: methods {bad} unknown; choose from {list(METHODS)}")
    for section in ("probe", "scoring", "ftgd"):
        if not isinstance(raw.get(section) or {}, dict):
            raise ConfigError(f"{name}: '{section}' must be a mapping of switches")
    cfg_name = str(raw.get("name", name))
    return RunConfig(
        name=cfg_name,
        series=str(raw.get("series", cfg_name)),
        models=tuple(_model(i, m, dev, str(raw.get("dtype", "auto"))) for i, m in enumerate(models)),
        tasks=tuple(str(t) for t in tasks),
        methods=methods,
        probe=dict(raw.get("probe") or {}),
        scoring=dict(raw.get("scoring") or {}),
        ftgd=dict(raw.get("ftgd") or {}),
        raw=raw,
    )


def load_config(path: str | Path, device: str | None = None) -> RunConfig:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file '{p}' does not exist (see configs/ for examples)")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from e
    return parse_config(raw, p.stem, device)
