"""Loading case files, reporting bad input, and flattening inputs to defined names."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import annotated_types as at
from pydantic import BaseModel, ValidationError

from finmodel.errors import InputError, shown, shown_name
from finmodel.inputs.schema import Assumptions


@dataclass(frozen=True)
class CaseSource:
    """Where a case came from: the file name and the SHA-256 of its bytes."""

    name: str
    sha256: str


#: Largest case file read (the shipped cases are under 10 KB).
MAX_CASE_BYTES = 1_000_000
#: Deepest nesting of tables and arrays (the schema needs 5: analysis.monte_carlo.
#: distributions.<path>.<parameter>).
MAX_DEPTH = 12


def load_assumptions(path: str | os.PathLike[str]) -> Assumptions:
    """Read and validate a TOML case file, whole: the schema, the rules tying its fields
    together and its ``[analysis]`` section.

    Raises
    ------
    InputError
        ``path`` is not a path; the file is missing, unreadable, larger than
        :data:`MAX_CASE_BYTES`, nested deeper than :data:`MAX_DEPTH`, not valid TOML, or
        breaks a rule of the schema; the message names the file, the field, the value and
        what was expected.
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InputError(f"load_assumptions: expected the path of a case file, got "
                         f"{shown(path)}")
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_CASE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{p}: case file not found") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read the case file ({exc.strerror or exc})") from None
    if len(raw) > MAX_CASE_BYTES:
        raise InputError(f"{p}: larger than {MAX_CASE_BYTES:,} bytes; a case file is a short "
                         "TOML text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{p}: not a UTF-8 text file") from None
    if "\x00" in text:
        raise InputError(f"{p}: not a text file (it contains NUL bytes)")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{p}: malformed TOML: {exc}") from None
    except (RecursionError, MemoryError):
        raise InputError(f"{p}: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise InputError(f"{p}: malformed TOML: {shown(str(exc), 200)}") from None
    a = parse_assumptions(data, source=str(p))
    a._source = CaseSource(p.name, hashlib.sha256(raw).hexdigest())
    return a


def parse_assumptions(data: dict[str, Any], source: str = "<case>") -> Assumptions:
    """Validate a case given as a dictionary (the parsed TOML), whole: the schema, the
    cross-field rules and the ``[analysis]`` section (:func:`check_analysis`).

    Raises
    ------
    InputError
        The first problems, each naming ``source``, the field and the value.
    """
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a case as a table of sections, got "
                         f"{shown(data)}")
    where = _too_deep(data, MAX_DEPTH)
    if where is not None:
        raise InputError(f"{source}: {where}: nested deeper than {MAX_DEPTH} levels")
    try:
        a = Assumptions.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, source)) from None
    except (RecursionError, OverflowError) as exc:
        raise InputError(f"{source}: {type(exc).__name__}: {shown(str(exc), 200)}") from None
    from finmodel.analysis.run import check_analysis

    try:
        check_analysis(a)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    return a


def _too_deep(node: Any, limit: int, where: str = "") -> str | None:
    """The path of the first value nested deeper than ``limit``, without recursion."""
    stack = [(node, where, 0)]
    while stack:
        item, at, depth = stack.pop()
        if depth > limit:
            return at or "(top)"
        if isinstance(item, dict):
            stack.extend((v, f"{at}.{k}" if at else str(k), depth + 1) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{at}[{i}]", depth + 1) for i, v in enumerate(item))
    return None


def format_validation_error(exc: ValidationError, source: str, most: int = 10) -> str:
    """One line per problem (at most ``most``): file, field path, what is wrong, the value
    given (shortened)."""
    lines = []
    errors = exc.errors(include_url=False)
    for err in errors[:most]:
        loc = ".".join(str(x) for x in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not an input of this section; check the spelling)"
        if err["type"] == "missing":
            msg = "required input is missing"
        given = err.get("input")
        shown_value = "" if err["type"] in ("missing",) or isinstance(given, (dict, list)) \
            else f" (got {shown(given)})"
        lines.append(f"{source}: {shown(loc, 120)[1:-1] + ': ' if loc else ''}"
                     f"{shown(msg, 400)[1:-1]}{shown_value}")
    if len(errors) > most:
        lines.append(f"... and {len(errors) - most} more")
    head = lines[0] if len(lines) == 1 else f"{len(errors)} problems:\n  " + "\n  ".join(lines)
    return head


def with_values(assumptions: Assumptions, changes: dict[str, Any]) -> Assumptions:
    """A copy of ``assumptions`` with fields changed by dotted path, validated again.

    ``with_values(a, {"network.btc_price_usd": 60000})``

    Raises
    ------
    InputError
        ``assumptions`` is not a case, ``changes`` not a mapping of field paths, a path
        names no field, or the changed case breaks a rule.
    """
    if not isinstance(assumptions, Assumptions):
        raise InputError(f"with_values: assumptions must be a case, got {shown(assumptions)}")
    if not isinstance(changes, Mapping):
        raise InputError(f"with_values: changes must be a mapping of field path -> value, "
                         f"got {shown(changes)}")
    data = assumptions.model_dump()
    for path, value in changes.items():
        if not isinstance(path, str) or not path:
            raise InputError(f"with_values: {shown(path)} is not a field path (such as "
                             "'network.btc_price_usd')")
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise InputError(f"{shown_name(path)}: no such input (unknown section "
                                 f"{shown(part)})")
            node = node[part]
        if leaf not in node:
            raise InputError(f"{shown_name(path)}: no such input")
        node[leaf] = value
        if value is None:  # an input taken out takes its source with it
            sources = data.get("input_sources") or {}
            for key in [k for k in sources if k == path or k.startswith(path + ".")]:
                del sources[key]
    out = parse_assumptions(data, source="<changed case>")
    out._source = getattr(assumptions, "_source", None)
    return out


@dataclass(frozen=True)
class InputField:
    """One input as the workbook shows it."""

    path: str  # "network.btc_price_usd"
    section: str
    value: Any  # float, str, date, list[float]
    unit: str
    description: str
    #: The schema's bounds on the value (on each element of a list): (">=", 0.0), ...
    bounds: tuple[tuple[str, float], ...] = ()
    #: The allowed codes of a choice input (a ``Literal`` field), else None.
    choices: tuple[str, ...] | None = None
    #: A whole number (an ``int`` field, or a list of them).
    integer: bool = False

    @property
    def defined_name(self) -> str:
        return self.path.replace(".", "_")


#: Choice inputs the model's formulas switch on live (IF on the word).
LIVE_CHOICES = frozenset({"power.pricing", "conversion.draw_curve",
                          "financing.convertible.settlement", "financing.debt.amortisation",
                          "valuation.terminal_method"})
#: Inputs that shape the workbook itself, with why: the workbook shows them greyed and
#: locked; change them in the case file and re-run finmodel.
STRUCTURAL = {
    "case.name": "the case title, written on every sheet",
    "case.start_month": "the first column of every sheet",
    "case.horizon_years": "the number of columns of every sheet",
}


def structural_reason(f: InputField) -> str | None:
    """Why an input cannot be changed live in the workbook (None: it can)."""
    if f.path in STRUCTURAL:
        return STRUCTURAL[f.path]
    if f.path.startswith("strategies.") and f.path.endswith((".kind", ".product")):
        return "which lines the strategy has"
    if f.choices is not None and f.path not in LIVE_CHOICES:
        return "which lines the model has"
    return None


def input_fields(assumptions: Assumptions) -> list[InputField]:
    """Every input that has a value, in schema order, with its unit and description."""
    from finmodel.inputs.schema import month_date

    out: list[InputField] = []

    def visit(model: BaseModel, path: str, section: str) -> None:
        for name, f in type(model).model_fields.items():
            value = getattr(model, name)
            here = f"{path}.{name}" if path else name
            if value is None:
                continue
            if here in ("analysis", "input_sources"):  # about the inputs, not inputs
                continue
            if isinstance(value, BaseModel):
                visit(value, here, here)
                continue
            if isinstance(value, dict):
                for key, sub in value.items():
                    visit(sub, f"{here}.{key}", f"{here}.{key}")
                continue
            extra = f.json_schema_extra or {}
            unit = str(extra.get("unit", ""))
            if unit == "YYYY-MM":
                value = month_date(value)
            bounds = list(_bounds(f))
            if isinstance(value, bool):
                value = 1.0 if value else 0.0
                bounds = [(">=", 0.0), ("<=", 1.0)]
            choices = _choices(f.annotation)
            integer = _is_int(f.annotation) and not isinstance(getattr(model, name), bool)
            out.append(InputField(here, section, value, unit, f.description or "",
                                  tuple(bounds), choices, integer))

    visit(assumptions, "", "")
    return out


_BOUND_KINDS = ((at.Gt, "gt", ">"), (at.Ge, "ge", ">="), (at.Lt, "lt", "<"),
                (at.Le, "le", "<="))


def _bounds(f: Any):
    for meta in f.metadata:
        for kind, attr, sym in _BOUND_KINDS:
            if isinstance(meta, kind):
                yield sym, float(getattr(meta, attr))


def _choices(annotation: Any) -> tuple[str, ...] | None:
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is typing.Literal:
            return tuple(typing.get_args(arg))
    return None


def _is_int(annotation: Any) -> bool:
    args = typing.get_args(annotation)
    return annotation is int or int in args or any(typing.get_args(x) == (int,)
                                                   for x in args) or \
        typing.get_args(annotation) == (int,)


def numeric_inputs(assumptions: Assumptions) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """(scalar inputs, yearly paths) by defined name, dates as spreadsheet serials."""
    from finmodel.conventions import to_serial

    scalars: dict[str, Any] = {}
    paths: dict[str, list[float]] = {}
    for f in input_fields(assumptions):
        if isinstance(f.value, list):
            paths[f.defined_name] = f.value
        elif isinstance(f.value, dt.date):
            scalars[f.defined_name] = to_serial(f.value)
        elif isinstance(f.value, (int, float)):
            scalars[f.defined_name] = float(f.value)
        elif f.choices is not None:  # a choice reaches numpy as its code
            scalars[f.defined_name] = float(f.choices.index(f.value))
    if assumptions.tax is not None:
        # The tax law's depreciation tables: cells of the workbook's Tax inputs block.
        from finmodel.models.tax import macrs_tables

        paths.update(macrs_tables())
    return scalars, paths


def choices_of(path: str) -> tuple[str, ...]:
    """The allowed values of the choice input at a field path ('power.pricing',
    'strategies.hybrid.product')."""
    model: Any = Assumptions
    parts, i = path.split("."), 0
    while i < len(parts) - 1:
        ann = model.model_fields[parts[i]].annotation
        if typing.get_origin(ann) is dict:  # strategies.<name>.<field>: skip the name
            model, i = typing.get_args(ann)[1], i + 2
        else:
            model, i = next(x for x in (ann, *typing.get_args(ann))
                            if isinstance(x, type) and issubclass(x, BaseModel)), i + 1
    found = _choices(model.model_fields[parts[-1]].annotation)
    if found is None:
        raise KeyError(f"{path} is not a choice input")
    return found
