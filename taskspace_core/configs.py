"""Every frozen config of taskspace, with no torch or transformers import (METHODS.md s2-s4, s8).

``ScoringConfig``, ``FTGDConfig`` and ``ProbeConfig`` determine the numbers of a unit and
are part of every cache key; ``ModelSpec`` names a model; ``RunConfig`` is a whole run
(models, task sources, methods, switches) as ``configs/*.yaml`` spell it. Each has
``from_dict`` / ``to_dict``; bad values raise errors whose message names the field and the
allowed values (``ConfigError.field`` says which, so the app can show it beside the widget).
The app, the CLI's planning and a cache-hit run import this module without torch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import yaml

from taskspace_core.store import canonical
from taskspace_core.tasks import DEFAULT_EVAL, DEFAULT_TUNE

# Method versions: bump one when its numbers change meaning (every cache key holds them).
SCORING_VERSION = 2  # 2: ties count as half a correct pair in accuracy
FTGD_VERSION = 1
PROBE_VERSION = 1
SKETCH_SEED = 0x7A5C  # fixed: every task of every run must share the hash to be comparable

METRICS = ("mean_margin", "accuracy")
TRANSFER_ESTIMATES = ("exact", "first_order")
DTYPES = ("auto", "float32", "bfloat16", "float16")
OFFLINE_DEFAULT = "smollm2-135m"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"


class ConfigError(ValueError):
    """A config that cannot be run; ``field`` is the dotted name of the bad field (``ftgd.lr``)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class FTGDError(ValueError):
    """Bad FTGD input (config, pairs, or a result that does not fit the model)."""


class ProbeError(ValueError):
    """Bad probing input; the message says what to change."""


class ModelError(RuntimeError):
    """A model could not be loaded; the message says what to do."""


def _choice(err: Callable[[str], Exception], name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise err(f"{name} must be one of {', '.join(repr(a) for a in allowed)}, not {value!r}")


def _from_dict(cls: Any, section: str, data: dict[str, Any] | None, **nested: Any) -> Any:
    """``cls(**data)`` with unknown fields named, together with the fields that exist."""
    data = dict(data or {})
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{section}: unknown field(s) {', '.join(unknown)}; known: {', '.join(known)}", section)
    return cls(**{**data, **nested})


@dataclass(frozen=True)
class ScoringConfig:
    """How pairs are scored. Part of every cache key; bump VERSION when numbers change meaning."""

    VERSION: ClassVar[int] = SCORING_VERSION
    reduction: str = "sum"  # sum | mean (per-token mean log-prob)
    share_prefix: bool = True
    max_batch_tokens: int = 0  # 0 = choose from free memory

    def __post_init__(self) -> None:
        if self.reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', not '{self.reduction}'")

    def key(self) -> dict:
        """The fields that change a score (batching does not), plus the method version."""
        return {"method": "scoring", "version": self.VERSION, "reduction": self.reduction}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ScoringConfig:
        return _from_dict(cls, "scoring", data)


@dataclass(frozen=True)
class FTGDConfig:
    """Every switch of FTGD (METHODS.md s3). Part of every cache key."""

    VERSION: ClassVar[int] = FTGD_VERSION
    mask_fraction: float = 0.01
    mask_scope: str = "global"  # global | per_tensor
    include_embeddings: bool = False
    mask_update: str = "fixed"  # fixed | per_step
    loss: str = "diff"  # diff (-margin) | logistic (-log sigmoid(margin))
    steps: int = 20
    lr: float = 1e-4
    batch_size: int = 8
    mask_pairs: int = 64
    grad_clip: float = 1.0
    seed: int = 0
    sketch_dim: int = 2**22

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_fraction <= 1.0:
            raise FTGDError(f"mask_fraction must be in (0, 1], not {self.mask_fraction}")
        if self.mask_scope not in ("global", "per_tensor"):
            raise FTGDError(f"mask_scope must be 'global' or 'per_tensor', not '{self.mask_scope}'")
        if self.mask_update not in ("fixed", "per_step"):
            raise FTGDError(f"mask_update must be 'fixed' or 'per_step', not '{self.mask_update}'")
        if self.loss not in ("diff", "logistic"):
            raise FTGDError(f"loss must be 'diff' or 'logistic', not '{self.loss}'")
        for name in ("steps", "batch_size", "mask_pairs", "sketch_dim"):
            value = getattr(self, name)
            if value < (0 if name == "steps" else 1):
                raise FTGDError(f"{name} must be positive, not {value}")
        if self.lr < 0 or self.grad_clip <= 0:
            raise FTGDError("lr must be >= 0 and grad_clip > 0")

    def key(self) -> dict[str, Any]:
        """Every field (they all change the numbers) plus the method version."""
        return {"method": "ftgd", "version": self.VERSION, "sketch_seed": SKETCH_SEED, **asdict(self)}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FTGDConfig:
        return _from_dict(cls, "ftgd", data)


@dataclass(frozen=True)
class ProbeConfig:
    """Everything that determines a task space's numbers (METHODS s4). Part of every cache key."""

    VERSION: ClassVar[int] = PROBE_VERSION
    n_tune: int = DEFAULT_TUNE
    n_eval: int = DEFAULT_EVAL
    metric: str = "mean_margin"  # mean_margin | accuracy
    transfer: str = "exact"  # exact | first_order
    tuning_halves: bool = False  # also tune on two halves of each tune split: tuning-noise reliability
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    ftgd: FTGDConfig = field(default_factory=FTGDConfig)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ProbeError(f"metric must be one of {', '.join(METRICS)}, not '{self.metric}'")
        if self.transfer not in TRANSFER_ESTIMATES:
            raise ProbeError(f"transfer must be 'exact' or 'first_order', not '{self.transfer}'")
        if self.n_tune < 1 or self.n_eval < 1:
            raise ProbeError("n_tune and n_eval must be at least 1")
        if not isinstance(self.tuning_halves, bool):
            raise ProbeError(f"tuning_halves must be true or false, not {self.tuning_halves!r}")
        if self.tuning_halves and self.transfer != "exact":
            raise ProbeError("tuning_halves needs transfer: exact (the first-order estimate has no per-pair values)")

    def key(self) -> dict[str, Any]:
        """The whole config (for the assembled space's key)."""
        return {
            "method": "probe",
            "version": self.VERSION,
            "n_tune": self.n_tune,
            "n_eval": self.n_eval,
            "metric": self.metric,
            "transfer": self.transfer,
            "scoring": self.scoring.key(),
            "ftgd": self.ftgd.key(),
            **({"tuning_halves": True} if self.tuning_halves else {}),  # off: keys of earlier spaces unchanged
        }

    def split_key(self) -> dict[str, Any]:
        """What fixes a task's tune/eval split (it depends on both sizes: a small task is cut in half)."""
        return {"probe_version": self.VERSION, "n_tune": self.n_tune, "n_eval": self.n_eval}

    def unit_key(self, kind: str) -> dict[str, Any]:
        """Only what changes one unit's numbers, so units are shared across configs.

        ``kind``: ``base`` | ``ftgd`` | ``transfer`` | ``eval_gradient``.
        """
        split = self.split_key()
        if kind == "base":
            return {**split, "scoring": self.scoring.key()}
        if kind == "ftgd":
            return {**split, "ftgd": self.ftgd.key()}
        if kind == "transfer":
            return {**split, "scoring": self.scoring.key(), "ftgd": self.ftgd.key()}
        if kind == "eval_gradient":
            return {**split, "ftgd": self.ftgd.key(), "first_order": 1}
        raise ProbeError(f"unknown unit kind '{kind}'; use base, ftgd, transfer or eval_gradient")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(
        cls, probe: dict[str, Any] | None, scoring: dict[str, Any] | None = None, ftgd: dict[str, Any] | None = None
    ) -> ProbeConfig:
        """From the ``probe:``, ``scoring:`` and ``ftgd:`` sections of a run config (or ``to_dict()``)."""
        probe = dict(probe or {})
        scoring = probe.pop("scoring", scoring)
        ftgd = probe.pop("ftgd", ftgd)
        sc, fc = ScoringConfig.from_dict(scoring), FTGDConfig.from_dict(ftgd)
        return _from_dict(cls, "probe", probe, scoring=sc, ftgd=fc)


@dataclass(frozen=True)
class ModelSpec:
    """What to load. ``dtype``/``device`` may be ``auto`` (bf16 on CUDA, fp32 on CPU)."""

    name_or_path: str = OFFLINE_DEFAULT
    revision: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    step0: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ModelError(f"dtype '{self.dtype}' is not one of {', '.join(DTYPES)}")
        if not self.name_or_path or not self.name_or_path.strip():
            raise ModelError("a model name or path is required")

    def as_step0(self) -> ModelSpec:
        from dataclasses import replace

        return replace(self, step0=True)

    @property
    def label(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"{self.name_or_path}{rev}{' (step0)' if self.step0 else ''}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        return _from_dict(cls, "model", data)


# ----------------------------------------------------------------------------- the run config

TOP_LEVEL = ("name", "series", "models", "tasks", "methods", "probe", "scoring", "ftgd", "device", "dtype")
MODEL_FIELDS = ("name", "revision", "size", "step", "step0", "seed", "dtype", "device")


@dataclass(frozen=True)
class ModelEntry:
    """A model of the run, placed in a series by its size label and training step."""

    spec: ModelSpec
    size: str = ""
    step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        s = self.spec
        return {"name": s.name_or_path, "revision": s.revision, "size": self.size, "step": self.step,
                "step0": s.step0, "seed": s.seed, "dtype": s.dtype, "device": s.device}  # fmt: skip

    @classmethod
    def from_dict(cls, m: Any, i: int = 0, device: str = "auto", dtype: str = "auto") -> ModelEntry:
        where = f"models[{i}]"
        if isinstance(m, str):
            m = {"name": m}
        if not isinstance(m, dict) or not m.get("name"):
            raise ConfigError(f"{where}: needs at least 'name' (a hub name, a local path or smollm2-135m)", where)
        unknown = set(m) - set(MODEL_FIELDS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(MODEL_FIELDS)}", where
            )
        try:
            spec = ModelSpec(str(m["name"]), m.get("revision"), dtype=str(m.get("dtype") or dtype),
                             device=str(m.get("device") or device), step0=bool(m.get("step0", False)),
                             seed=int(m.get("seed", 0)))  # fmt: skip
            step = m.get("step")
            return cls(spec, str(m.get("size") or ""), int(step) if step is not None else None)
        except (ModelError, TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {e}", where) from e


@dataclass(frozen=True)
class RunConfig:
    """A whole run. ``probe``/``scoring``/``ftgd`` keep the file's switches; ``probe_cfg`` is them validated."""

    name: str
    series: str
    models: tuple[ModelEntry, ...]
    tasks: tuple[str, ...]
    methods: tuple[str, ...]
    probe: dict[str, Any]
    scoring: dict[str, Any]
    ftgd: dict[str, Any]
    raw: dict[str, Any]
    probe_cfg: ProbeConfig = field(default_factory=ProbeConfig)

    def probe_config(self) -> ProbeConfig:
        """The frozen ProbeConfig this run uses (built and validated once, when the config was parsed)."""
        return self.probe_cfg

    def digest(self) -> str:
        """Hash of everything but names and device placement: same numbers, same digest."""
        core = {k: self.raw.get(k) for k in ("models", "tasks", "methods", "probe", "scoring", "ftgd")}
        return hashlib.sha256(canonical(core).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """The config as a YAML file spells it (``from_dict(to_dict())`` gives an equal config)."""
        return {"name": self.name, "series": self.series, "models": [m.to_dict() for m in self.models],
                "tasks": list(self.tasks), "methods": list(self.methods), "probe": dict(self.probe),
                "scoring": dict(self.scoring), "ftgd": dict(self.ftgd)}  # fmt: skip

    @classmethod
    def from_dict(cls, raw: dict[str, Any], name: str = "config", device: str | None = None) -> RunConfig:
        return parse_config(raw, name, device)


_SECTIONS = {"probe": ProbeConfig, "scoring": ScoringConfig, "ftgd": FTGDConfig}


def _section(section: str, raw: dict[str, Any]) -> Any:
    """The config of one switches section; an error names ``section.field`` and the allowed values."""
    data = raw.get(section) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"'{section}' must be a mapping of switches", section)
    cls = _SECTIONS[section]
    try:
        return cls.from_dict(data)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        word = str(e).split(" ")[0]
        bad = next((f.name for f in fields(cls) if f.name == word), "")
        raise ConfigError(f"{section}: {e}", f"{section}.{bad}" if bad else section) from e


def _probe_config(raw: dict[str, Any]) -> ProbeConfig:
    probe = _section("probe", raw)  # its own fields first, so each section reports its own error
    parts = {s: _section(s, raw) for s in ("scoring", "ftgd")}
    from dataclasses import replace

    return replace(probe, **parts)


def _methods(raw: dict[str, Any]) -> tuple[str, ...]:
    from taskspace_core import methods as registry  # the registry's declarations import this module

    allowed = registry.config_names()
    chosen = raw.get("methods") or registry.default_config_names()
    chosen = (chosen,) if isinstance(chosen, str) else tuple(str(m) for m in chosen)
    bad = [m for m in chosen if m not in allowed]
    if bad:
        raise ConfigError(f"methods {bad} unknown; choose from {list(allowed)}", "methods")
    return chosen


def _checks(raw: dict[str, Any], device: str | None) -> dict[str, Any]:
    """Each part of a run config, checked on its own (so every bad field is reported at once)."""
    dev = device or str(raw.get("device", "auto"))
    dtype = str(raw.get("dtype", "auto"))
    tasks = raw.get("tasks") or []
    tasks = [tasks] if isinstance(tasks, str) else tasks

    def models() -> tuple[ModelEntry, ...]:
        if not raw.get("models"):
            raise ConfigError("'models' lists no model", "models")
        return tuple(ModelEntry.from_dict(m, i, dev, dtype) for i, m in enumerate(raw["models"]))

    def task_list() -> tuple[str, ...]:
        if not tasks:
            raise ConfigError("'tasks' lists no task source", "tasks")
        return tuple(str(t) for t in tasks)

    def placement() -> None:
        _choice(lambda m: ConfigError(m, "dtype"), "dtype", dtype, DTYPES)

    return {"models": models, "tasks": task_list, "methods": lambda: _methods(raw),
            "scoring": lambda: _section("scoring", raw), "ftgd": lambda: _section("ftgd", raw),
            "probe": lambda: _probe_config(raw), "dtype": placement}  # fmt: skip


def parse_config(raw: dict[str, Any], name: str = "config", device: str | None = None) -> RunConfig:
    """Validate a config dict; ``device`` overrides the file's device (e.g. --device cuda:1)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: the file must hold a mapping (models:, tasks:, ...)")
    unknown = set(raw) - set(TOP_LEVEL)
    if unknown:
        raise ConfigError(
            f"{name}: unknown top-level field(s) {', '.join(sorted(unknown))}; known: {', '.join(TOP_LEVEL)}"
        )
    try:
        parts = {k: check() for k, check in _checks(raw, device).items()}
    except ConfigError as e:
        raise ConfigError(f"{name}: {e}", e.field) from e
    cfg_name = str(raw.get("name", name))
    return RunConfig(
        name=cfg_name,
        series=str(raw.get("series", cfg_name)),
        models=parts["models"],
        tasks=parts["tasks"],
        methods=parts["methods"],
        probe=dict(raw.get("probe") or {}),
        scoring=dict(raw.get("scoring") or {}),
        ftgd=dict(raw.get("ftgd") or {}),
        raw=raw,
        probe_cfg=parts["probe"],
    )


def config_errors(raw: dict[str, Any]) -> dict[str, str]:
    """Every problem of a run config as ``{field: message}`` (empty when it can run); for the Run view."""
    if not isinstance(raw, dict):
        return {"": "the config must be a mapping (models:, tasks:, ...)"}
    out = {k: f"unknown top-level field '{k}'" for k in set(raw) - set(TOP_LEVEL)}
    for part, check in _checks(raw, None).items():
        try:
            check()
        except ConfigError as e:
            out[e.field or part] = str(e)
    return out


def load_config(path: str | Path, device: str | None = None) -> RunConfig:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file '{p}' does not exist (see configs/ for examples)")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from e
    return parse_config(raw, p.stem, device)


def default_config() -> dict[str, Any]:
    """``configs/default.yaml`` as a dict: the one source of the defaults the Run view starts from."""
    return yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
