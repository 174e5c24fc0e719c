"""Run configs (YAML): the loader the CLI uses. The classes live in :mod:`taskspace_core.configs` (torch-free)."""

from __future__ import annotations

from taskspace_core.configs import ConfigError, ModelEntry, RunConfig, load_config, parse_config

__all__ = ["ConfigError", "ModelEntry", "RunConfig", "load_config", "parse_config"]


def __getattr__(name: str) -> object:
    if name == "METHODS":  # the config names of the default methods, from the registry
        from taskspace_core.methods import default_config_names

        return default_config_names()
    raise AttributeError(name)
