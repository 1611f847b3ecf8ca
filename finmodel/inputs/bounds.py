"""Scenario values of inputs: field paths resolved, each value checked against the field's
bounds, type (whole numbers, flags, months) and the cross-field rules of the case."""

from __future__ import annotations

import operator
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import annotated_types as at
import numpy as np
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from finmodel.errors import InputError, shown, shown_name
from finmodel.inputs.rules import FIRST_YEAR, LAST_YEAR, add_months, cross_field_problem
from finmodel.inputs.schema import Assumptions

_CHECKS = ((at.Gt, "gt", operator.gt, ">"), (at.Ge, "ge", operator.ge, ">="),
           (at.Lt, "lt", operator.lt, "<"), (at.Le, "le", operator.le, "<="))

#: Inputs that shape the timeline itself: one evaluation cannot vary them.
STRUCTURAL = frozenset({"case.horizon_years", "case.start_month"})


@dataclass(frozen=True)
class InputRef:
    """A numeric input of a case, found by its field path."""

    path: str
    info: FieldInfo
    value: Any  # the case's value

    @property
    def kind(self) -> str:
        """'number', 'integer', 'flag', 'month' or 'path' (a yearly list)."""
        unit = (self.info.json_schema_extra or {}).get("unit")
        ann = self.info.annotation
        args = set(typing.get_args(ann)) | {ann}
        if unit == "YYYY-MM":
            return "month"
        if bool in args:
            return "flag"
        if isinstance(self.value, list):
            return "path"
        if int in args and float not in args:
            return "integer"
        return "number"


def resolve_input(a: Assumptions, path: Any, *, what: str = "input", rules: bool = True
                  ) -> InputRef:
    """The numeric input at a dotted field path (``"strategies.hybrid.ai_it_mw"``).

    Raises
    ------
    InputError
        The path is not a string, names no field of the case, names a section, a text or
        choice field, a field the case leaves unset, or one that shapes the timeline.
    """
    if not isinstance(path, str):
        raise InputError(f"{what} {shown(path)}: expected a field path such as "
                         "'network.btc_price_usd'")
    node: Any = a
    info: FieldInfo | None = None
    for i, part in enumerate(path.split(".")):
        if isinstance(node, BaseModel) and part in type(node).model_fields \
                and not (i == 0 and part == "analysis"):
            info, node = type(node).model_fields[part], getattr(node, part)
        elif isinstance(node, dict) and part in node:
            info, node = None, node[part]
        else:
            raise InputError(f"{shown_name(path)}: no such input in this case (a field path such "
                             "as 'network.btc_price_usd')")
    if info is None or isinstance(node, (BaseModel, dict)):
        raise InputError(f"{shown_name(path)}: a section, not an input")
    if rules and path in STRUCTURAL:
        raise InputError(f"{path}: shapes the timeline and cannot vary between scenarios of "
                         "one evaluation; run the case again with a changed value")
    unit = (info.json_schema_extra or {}).get("unit")
    if unit in ("text", "choice", "path"):
        raise InputError(f"{path}: a {unit} field, not a numeric input")
    if node is None:
        raise InputError(f"{path}: not set in this case, so it cannot be varied; give it a "
                         "value in the case file first")
    return InputRef(path, info, node)


def check_scenario_array(a: Assumptions, path: str, values: Any, rows: bool | None = None,
                         rules: bool = True) -> np.ndarray:
    """``values`` for the input at ``path`` as a float array, each element checked against
    the field's bounds and type: 1-D (one value per scenario), or 2-D (scenarios, years)
    for a yearly path. Cross-field rules are checked by :func:`check_scenarios`; with
    ``rules`` false only the field's bounds are (see :func:`check_scenarios`)."""
    ref = resolve_input(a, path, rules=rules)
    kind = ref.kind
    if rules and kind == "path" and "_path_" not in path:
        raise InputError(f"{path}: a list that is not a yearly path cannot vary between "
                         "scenarios; change it in the case (finmodel.with_values)")
    want = 2 if (kind == "path" if rows is None else rows) else 1
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{path}: scenario values must be numbers, got {shown(values)}"
                         ) from None
    if kind == "path" and arr.ndim == 1 and want == 2:
        arr = arr[None, :]
    if arr.ndim == 0 and want == 1:
        arr = arr.reshape(1)
    if arr.ndim != want or arr.size == 0:
        raise InputError(f"{path}: scenario values must be a {want}-D array "
                         f"({'scenarios, years' if want == 2 else 'one value per scenario'})"
                         f", not empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{path}: scenario values must be finite numbers")
    check_bounds(path, ref.info, arr)
    if kind in ("integer", "month") and np.any(arr != np.round(arr)):
        raise InputError(f"{path}: expected whole numbers, got {arr[arr != np.round(arr)][0]:g}")
    if kind == "flag" and not np.all((arr == 0) | (arr == 1)):
        raise InputError(f"{path}: a flag is 0 or 1, got {arr[(arr != 0) & (arr != 1)][0]:g}")
    if kind == "month":
        lo = add_months(0, (FIRST_YEAR - 1900) * 12 + 1)  # 1900-01-01 is serial 2
        hi = add_months(lo, (LAST_YEAR - FIRST_YEAR + 1) * 12 - 1)
        month_start = add_months(arr, 0)
        bad = (arr != month_start) | (arr < lo) | (arr > hi)
        if bad.any():
            raise InputError(f"{path}: expected first days of months from {FIRST_YEAR}-01 to "
                             f"{LAST_YEAR}-12 as spreadsheet serials, got {arr[bad][0]:g}")
    if kind == "path" and rules:
        if np.any(arr <= 0):
            raise InputError(f"{path}: path values must be positive")
        years = a.case.horizon_years
        if arr.shape[1] < years:
            raise InputError(f"{path}: {arr.shape[1]} values per scenario; expected one per "
                             f"model year, at least case.horizon_years = {years}")
    return arr


def check_bounds(path: str, info: FieldInfo, arr: np.ndarray, what: str = "scenario value"
                 ) -> None:
    """Every element of ``arr`` within the bounds the schema declares for the field."""
    for meta in info.metadata:
        for cls, attr, op, sym in _CHECKS:
            if isinstance(meta, cls):
                limit = getattr(meta, attr)
                ok = op(arr, limit)
                if not ok.all():
                    bad = float(arr[~ok].flat[0])
                    raise InputError(f"{path}: {what} {bad:g} breaks the bound {sym} {limit:g}")


def check_scenarios(a: Assumptions, inputs: Mapping[str, Any], *, rows: int | None = None,
                    what: str = "inputs", rules: bool = True) -> dict[str, np.ndarray]:
    """Scenario values by field path, each checked (:func:`check_scenario_array`), their
    lengths agreeing (one value, or one per scenario), and every scenario checked against
    the cross-field rules of the case (``site.mining_it_mw`` x ``power.pue`` within the
    interconnect, ...).

    ``rules=False`` checks only each value against its own field's bounds and lets the
    cross-field rules, the inputs that shape the timeline and list inputs be broken: for
    testing the model's own checks (which flag such states in an edited workbook), never
    for results.

    Raises
    ------
    InputError
        Naming the input, the scenario and the value.
    """
    if not isinstance(inputs, Mapping):
        raise InputError(f"{what}: expected a mapping of field path -> values, got "
                         f"{shown(inputs)}")
    out = {str(p): check_scenario_array(a, p, v, rules=rules) for p, v in inputs.items()}
    sizes = {p: v.shape[0] for p, v in out.items() if v.shape[0] != 1}
    if rows is not None:
        sizes = {**sizes, "scenarios": rows} if rows != 1 else sizes
    if len(set(sizes.values())) > 1:
        raise InputError(f"{what}: scenario arrays disagree in length: "
                         + ", ".join(f"{p} has {n}" for p, n in sizes.items()))
    problem = rules and cross_field_problem(a, {p: v for p, v in out.items() if v.ndim == 1})
    if problem:
        raise InputError(f"{what}: {problem}")
    return out
