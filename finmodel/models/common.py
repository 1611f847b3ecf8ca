"""Helpers shared by the business modules."""

from __future__ import annotations

from pydantic import BaseModel

from finmodel.conventions import MONTHS_PER_YEAR
from finmodel.engine.expr import Chosen, Expr, Input, PathInput, time


def inp(path: str) -> Input:
    """The input at a dotted field path, by its defined name."""
    return Input(path.replace(".", "_"))


def chosen(path: str, value: str) -> Chosen:
    """1 where the choice input at ``path`` is ``value`` (live in the workbook: switching
    the word on the Inputs sheet switches the formulas)."""
    from finmodel.inputs.load import choices_of

    return Chosen(path.replace(".", "_"), value, float(choices_of(path).index(value)))


def escalated(base: Expr, rate_path: str | None) -> Expr:
    """``base * (1 + rate) ** (t / 12)``: an annual rate compounded monthly from the start."""
    if rate_path is None:
        return base
    return base * (1 + inp(rate_path)) ** (time("index") / MONTHS_PER_YEAR)


def start_growth_or_path(section: BaseModel, prefix: str, start: str, rate: str,
                         path: str) -> Expr:
    """A quantity given either as a start value with an annual growth rate, or as an
    explicit path of one value per model year (held flat within the year)."""
    if getattr(section, path) is not None:
        return PathInput(f"{prefix}_{path}", time("model_year"))
    base: Expr = inp(f"{prefix}.{start}")
    if getattr(section, rate) is None:
        return base
    return escalated(base, f"{prefix}.{rate}")
