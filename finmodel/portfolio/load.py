"""Reading a portfolio file and building each site's case."""

from __future__ import annotations

import copy
import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from finmodel.errors import InputError
from finmodel.inputs.load import CaseSource, format_validation_error, parse_assumptions
from finmodel.inputs.schema import Assumptions
from finmodel.portfolio.schema import Portfolio, month_index, note_path


@dataclass
class LoadedPortfolio:
    """A validated portfolio and the validated case of every site."""

    spec: Portfolio
    cases: dict[str, Assumptions]
    source: CaseSource | None = None

    @property
    def start_month(self) -> str:
        return next(iter(self.cases.values())).case.start_month

    @property
    def months(self) -> int:
        return next(iter(self.cases.values())).case.horizon_years * 12


def _read_toml(p: Path, what: str) -> tuple[dict[str, Any], bytes]:
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{p}: {what} not found") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read the {what} ({exc.strerror})") from None
    try:
        return tomllib.loads(raw.decode("utf-8")), raw
    except UnicodeDecodeError:
        raise InputError(f"{p}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{p}: malformed TOML: {exc}") from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else copy.deepcopy(v)
    return out


def load_portfolio(path: str | Path) -> LoadedPortfolio:
    """Read and validate a portfolio file and every site's case.

    Raises
    ------
    InputError
        The file or a site's case is missing or malformed, breaks a rule of its schema,
        or the sites do not share one timeline; the message names the file and the field.
    """
    p = Path(path)
    data, raw = _read_toml(p, "portfolio file")
    out = parse_portfolio(data, source=str(p), folder=p.parent)
    out.source = CaseSource(p.name, hashlib.sha256(raw).hexdigest())
    return out


def parse_portfolio(data: dict[str, Any], *, source: str = "<portfolio>",
                    folder: Path = Path(".")) -> LoadedPortfolio:
    """Validate a portfolio given as a dictionary; case paths are relative to ``folder``."""
    if isinstance(data.get("case"), dict) and "company" not in data and "sites" not in data:
        # A case file given where a portfolio is expected: say so, rather than list the
        # portfolio's missing sections ("company: required input is missing").
        raise InputError(f"{source}: this is a case file (it has [case] and no [company] or "
                         "[sites]), not a portfolio; run `finmodel run` on it, or give "
                         "`finmodel portfolio` a portfolio file such as "
                         "assumptions/bitdeer_portfolio.toml")
    try:
        spec = Portfolio.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, source)) from None
    raw_cases: dict[str, dict[str, Any]] = {}
    cases: dict[str, Assumptions] = {}
    for name, site in spec.sites.items():
        file = site.file or spec.base_case
        key = str(folder / file)
        if key not in raw_cases:
            field = f"sites.{name}.file" if site.file else "base_case"
            if not (folder / file).is_file():
                raise InputError(f"{source}: {field}: case file {file!r} not found (looked "
                                 f"in {folder})")
            raw_cases[key] = _read_toml(folder / file, "case file")[0]
        merged = _merge(raw_cases[key], site.overrides())
        where = f"{source}: sites.{name} (over {file})"
        cases[name] = parse_assumptions(merged, source=where)
    _check_sites(spec, cases, source)
    return LoadedPortfolio(spec, cases)


def _check_sites(spec: Portfolio, cases: dict[str, Assumptions], source: str) -> None:
    first_name, first = next(iter(cases.items()))
    for name, a in cases.items():
        if (a.case.start_month, a.case.horizon_years) != (first.case.start_month,
                                                          first.case.horizon_years):
            raise InputError(
                f"{source}: sites.{name}: case.start_month {a.case.start_month} and "
                f"horizon_years {a.case.horizon_years} must equal those of sites.{first_name}"
                f" ({first.case.start_month}, {first.case.horizon_years}): the company view "
                "needs one timeline")
        opts = spec.options_of(name)
        where = f"sites.{name}.options" if spec.sites[name].options else "options"
        for s in opts.strategies:
            if s not in a.strategies:
                raise InputError(f"{source}: {where}.strategies: {s!r} is not a strategy of "
                                 f"the case of sites.{name} ({', '.join(a.strategies)})")
        months = a.case.horizon_years * 12
        for m in opts.start_months:
            k = month_index(m, a.case.start_month)
            if not 0 <= k <= months - 12:
                raise InputError(f"{source}: {where}.start_months: {m} is outside the model "
                                 f"({a.case.start_month} to a year before its end)")
    for note in spec.financing.existing:
        if note.issue_month is not None and \
                month_index(note.issue_month, note.maturity_month) >= 0:
            raise InputError(f"{source}: {note_path(note.name)}.issue_month: "
                             f"{note.issue_month} is not before its maturity_month "
                             f"{note.maturity_month}")
        if month_index(note.maturity_month, first.case.start_month) < 0:
            raise InputError(f"{source}: {note_path(note.name)}.maturity_month: "
                             f"{note.maturity_month} is before the sites' start "
                             f"{first.case.start_month} (a note already repaid or converted "
                             "is not part of the stack)")
    for name, dists in spec.monte_carlo.distributions.items():
        if name not in cases:
            raise InputError(f"{source}: monte_carlo.distributions.{name}: not a site of the "
                             f"portfolio ({', '.join(cases)})")
        from finmodel.analysis.monte_carlo import prepare_draws
        from finmodel.analysis.sensitivity import Scenarios

        try:
            prepare_draws(Scenarios.of(cases[name]), dists, None)
        except InputError as exc:
            raise InputError(f"{source}: monte_carlo.distributions.{name}: {exc}") from None
    for y in spec.constraints.capex_budget_usd_by_year:
        year0 = int(first.case.start_month[:4])
        if not year0 <= int(y) < year0 + first.case.horizon_years + 1:
            raise InputError(f"{source}: constraints.capex_budget_usd_by_year.{y}: the year is "
                             "outside the sites' timeline")
