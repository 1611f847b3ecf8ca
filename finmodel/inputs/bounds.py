"""Checking scenario arrays against the bounds the schema declares for a field."""

from __future__ import annotations

import operator
from typing import Any

import annotated_types as at
import numpy as np

from finmodel.errors import InputError
from finmodel.inputs.schema import Assumptions

_CHECKS = ((at.Gt, "gt", operator.gt, ">"), (at.Ge, "ge", operator.ge, ">="),
           (at.Lt, "lt", operator.lt, "<"), (at.Le, "le", operator.le, "<="))


def check_scenario_array(a: Assumptions, path: str, values: Any, rows: bool = False
                         ) -> np.ndarray:
    """``values`` as a float array, after checking each element against the bounds of the
    field at ``path``. 1-D (one value per scenario), or 2-D (scenarios, years) for a yearly
    path when ``rows`` is true."""
    model, name = _owner(a, path)
    if model is None or name not in model.model_fields:
        raise InputError(f"{path}: no such input")
    arr = np.asarray(values, dtype=float)
    want = 2 if rows else 1
    if arr.ndim != want:
        raise InputError(f"{path}: scenario values must be a {want}-D array, got shape "
                         f"{arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{path}: scenario values must be finite numbers")
    bounds = model.model_fields[name].metadata
    for meta in bounds:
        for kind, attr, op, sym in _CHECKS:
            if isinstance(meta, kind):
                limit = getattr(meta, attr)
                ok = op(arr, limit)
                if not ok.all():
                    bad = float(arr[~ok].flat[0])
                    raise InputError(f"{path}: scenario value {bad:g} breaks the bound "
                                     f"{sym} {limit:g}")
    if rows and np.any(arr <= 0):
        raise InputError(f"{path}: path values must be positive")
    return arr


def _owner(a: Assumptions, path: str) -> tuple[type | None, str]:
    """The pydantic model class holding the field at ``path`` and the field's name; the path
    may pass through named entries (``strategies.hybrid.conversion_start_month``)."""
    *parents, name = path.split(".")
    node: Any = a
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
        if node is None:
            return None, name
    return (type(node) if not isinstance(node, dict) else None), name
