"""The method registry (see :mod:`taskspace_core.methods.registry`); importing it registers the built-ins.

Adding a method is one new module here that calls :func:`register_kind` / :func:`register`
(and its name in ``BUILTIN`` below); the runner, the export and every view pick it up.
"""

from __future__ import annotations

import importlib

from taskspace_core.methods.registry import (
    Assembly,
    MatrixView,
    Method,
    Unit,
    UnitContext,
    UnitKind,
    active,
    config_names,
    default_config_names,
    estimates,
    export_name,
    family_source,
    kind,
    kinds,
    methods,
    planned_kinds,
    register,
    register_kind,
    result_fields,
    stream_shares,
    unregister,
    view,
    views,
)

# the built-in methods, in the order the pickers list their views
BUILTIN = (
    "base",
    "ftgd_units",
    "transfer_exact",
    "transfer_first_order",
    "gradient_cosine",
    "mask_overlap",
    "representation",
    "tuning_halves",
)
for _name in BUILTIN:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = [
    "Assembly",
    "MatrixView",
    "Method",
    "Unit",
    "UnitContext",
    "UnitKind",
    "active",
    "config_names",
    "default_config_names",
    "estimates",
    "export_name",
    "family_source",
    "kind",
    "kinds",
    "methods",
    "planned_kinds",
    "register",
    "register_kind",
    "result_fields",
    "stream_shares",
    "unregister",
    "view",
    "views",
]
