"""The portfolio file (``portfolio.toml``): the company, its sites, the options allowed at
each site, the constraints and the financing stack. Strict like a case file: unknown keys,
wrong types and out-of-range values are refused with the file and the field named."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from finmodel.inputs.schema import Month, month_date


def _f(default: Any = ..., *, unit: str, description: str, **bounds: Any) -> Any:
    return Field(default, description=description, json_schema_extra={"unit": unit}, **bounds)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


#: Sections of a case file a site may override (deep-merged over the base case).
CASE_SECTIONS = ("case", "network", "site", "power", "mining", "strategies", "hosting",
                 "cloud", "conversion", "valuation", "tax", "financing")


class CompanySection(_Section):
    """The company that owns the sites."""

    name: str = _f(unit="text", description="Company or portfolio title", min_length=1,
                   max_length=200)
    cash_usd: float = _f(unit="USD", description="Cash on hand at the start (after the "
                         "existing notes were raised)", ge=0.0, le=1e13)
    shares_outstanding: float = _f(unit="shares", description="Shares outstanding at the "
                                   "start", gt=0.0, le=1e12)
    share_price_usd: float = _f(unit="USD/share", description="Share price at the start "
                                "(new equity is issued at it; notes convert when it is "
                                "above their conversion price)", gt=0.0, le=1e6)
    share_price_volatility: float = _f(0.6, unit="rate", description="Annual volatility of "
                                       "the share price (reported; convertible lattice)",
                                       gt=0.0, le=3.0)
    overhead_usd_per_year: float = _f(0.0, unit="USD/year", description="Corporate overhead "
                                      "(G&A not in any site), paid monthly", ge=0.0, le=1e12)
    overhead_escalator_rate: float = _f(0.0, unit="rate", description="Annual growth of the "
                                        "overhead, compounded monthly", gt=-1.0, le=1.0)
    overhead_terminal_multiple: float = _f(0.0, unit="multiple", description="The overhead "
                                           "beyond the horizon, as a multiple of its last "
                                           "year after tax (as the sites' exit multiples "
                                           "count their EBITDA beyond it); 0 stops it at "
                                           "the horizon", ge=0.0, le=50.0)
    tax_rate: float = _f(0.0, unit="rate", description="Tax shield on the overhead (its "
                         "after-tax cost is overhead x (1 - tax_rate))", ge=0.0, lt=1.0)
    discount_rate: float = _f(unit="rate", description="Annual rate the company's own flows "
                              "(overhead, notes) are discounted at", ge=0.0, le=1.0)


class OptionsSpec(_Section):
    """Which strategies of a site's case may be chosen, and from which start months."""

    strategies: list[str] = _f(unit="names", description="Strategies of the site's case "
                               "that may be chosen; 'mining' (keep mining) is the status quo",
                               min_length=1)
    start_months: list[Month] = _f(unit="YYYY-MM", description="Months a conversion may "
                                   "start (each converting strategy is evaluated at each)",
                                   min_length=1)


class SiteSpec(_Section):
    """One site: its own case file, or sections that override the portfolio's base case."""

    file: str | None = _f(None, unit="path", description="Case file of the site (relative "
                          "to the portfolio file); default: the portfolio's base_case")
    label: str | None = _f(None, unit="text", description="Name shown in the workbook",
                           max_length=80)
    source: str | None = _f(None, unit="text", description="Where the site's figures come "
                            "from (fact IDs, EST)", max_length=400)
    options: OptionsSpec | None = None
    case: dict[str, Any] | None = None
    network: dict[str, Any] | None = None
    site: dict[str, Any] | None = None
    power: dict[str, Any] | None = None
    mining: dict[str, Any] | None = None
    strategies: dict[str, Any] | None = None
    hosting: dict[str, Any] | None = None
    cloud: dict[str, Any] | None = None
    conversion: dict[str, Any] | None = None
    valuation: dict[str, Any] | None = None
    tax: dict[str, Any] | None = None
    financing: dict[str, Any] | None = None

    def overrides(self) -> dict[str, Any]:
        """The case sections this site overrides."""
        return {k: getattr(self, k) for k in CASE_SECTIONS if getattr(self, k) is not None}


class ConstraintsSection(_Section):
    """What the plan must respect."""

    capex_budget_usd_by_year: dict[str, float] = _f(
        default_factory=dict, unit="USD", description="Calendar year ('2027') -> the most "
        "capex the plan may spend in it (years not listed are not limited)")
    capex_scope: Literal["conversion", "all"] = _f(
        "conversion", unit="choice", description="Capex counted against the budget: "
        "'conversion' (conversion build and its sustaining capex) or 'all' (also mining "
        "fleet purchases and refreshes)")
    max_new_funding_usd: float = _f(unit="USD", description="The most new money the company"
                                    " can raise (the new issuance's capacity)", ge=0.0,
                                    le=1e13)
    min_cash_usd: float = _f(0.0, unit="USD", description="Cash the company keeps at every "
                             "month end", ge=0.0, le=1e13)

    @model_validator(mode="after")
    def _years(self) -> ConstraintsSection:
        for year, limit in self.capex_budget_usd_by_year.items():
            if not re.fullmatch(r"(19|20|21)\d\d", year):
                raise ValueError(f"capex_budget_usd_by_year: key {year!r} is not a calendar "
                                 "year such as '2027'")
            if not 0 <= limit <= 1e13:
                raise ValueError(f"capex_budget_usd_by_year.{year}: expected 0 to 1e13 USD, "
                                 f"got {limit!r}")
        return self


class ExistingNote(_Section):
    """One convertible note the company has already issued (the cash is in company.cash_usd).
    It converts if the share price is above its conversion price, else it is repaid."""

    name: str = _f(unit="text", description="Label, with its source", min_length=1,
                   max_length=120)
    principal_usd: float = _f(unit="USD", description="Principal outstanding", gt=0.0,
                              le=1e12)
    coupon_rate: float = _f(unit="rate", description="Annual coupon on principal", ge=0.0,
                            le=0.5)
    coupons_per_year: int = _f(2, unit="count", description="Coupon payments a year",
                               ge=1, le=12)
    maturity_month: Month = _f(unit="YYYY-MM", description="Month principal is repaid")
    issue_month: Month | None = _f(None, unit="YYYY-MM", description="Month the note was "
                                   "issued: no coupon falls in or before it (coupons are "
                                   "counted back from maturity); leave out for a note "
                                   "issued before the sites' start")
    conversion_price_usd: float = _f(unit="USD/share", description="Conversion price",
                                     gt=0.0, le=1e6)


class NewIssuance(_Section):
    """How new money is raised when the plan needs it: at the plan's start, for the amount
    the plan needs (at most constraints.max_new_funding_usd)."""

    kind: Literal["equity", "convertible"] = _f(unit="choice", description="'equity': new "
                                                "shares at the share price; 'convertible': "
                                                "a new note")
    issuance_cost_share: float = _f(0.03, unit="share", description="Fees and discount, as "
                                    "a share of the amount raised", ge=0.0, lt=1.0)
    coupon_rate: float = _f(0.0, unit="rate", description="Annual coupon (convertible)",
                            ge=0.0, le=0.5)
    coupons_per_year: int = _f(2, unit="count", description="Coupon payments a year "
                               "(convertible)", ge=1, le=12)
    term_years: int = _f(6, unit="years", description="Term (convertible)", ge=1, le=30)
    conversion_premium_share: float = _f(0.3, unit="share", description="Conversion price "
                                         "over the share price (convertible)", ge=0.0,
                                         le=5.0)


class FinancingStack(_Section):
    """The existing convertible stack and the new issuance."""

    existing: list[ExistingNote] = Field(default_factory=list,
                                         description="Notes already issued")
    new: NewIssuance = Field(default_factory=lambda: NewIssuance(kind="equity"))


class MonteCarloSection(_Section):
    """Probability of a funding shortfall: BTC price and hashrate paths shared by all
    sites."""

    scenarios: int = _f(500, unit="count", description="Scenarios", ge=1, le=1_000_000)
    seed: int = _f(0, unit="count", description="Random seed", ge=0)
    btc_price_volatility: float = _f(0.5, unit="rate", description="Annual volatility of "
                                     "the BTC price path", ge=0.0, le=5.0)
    hashrate_volatility: float = _f(0.2, unit="rate", description="Annual volatility of the "
                                    "network hashrate path", ge=0.0, le=5.0)
    path_correlation: float = _f(0.5, unit="ratio", description="Correlation of the two "
                                 "paths' shocks", ge=-1.0, le=1.0)
    distributions: dict[str, dict[str, dict[str, float | str]]] = Field(
        default_factory=dict, description="Site -> field path -> {dist = 'normal' | "
        "'lognormal' | 'triangular' | 'uniform', and its parameters}: site-level inputs "
        "drawn per scenario, independently across sites and inputs")


class Portfolio(_Section):
    """A whole portfolio file."""

    company: CompanySection
    base_case: str | None = _f(None, unit="path", description="Case file the sites override "
                               "(relative to the portfolio file)")
    options: OptionsSpec = Field(description="Options allowed at every site unless the site "
                                 "gives its own")
    sites: dict[str, SiteSpec] = Field(min_length=1, description="Sites by name")
    constraints: ConstraintsSection
    financing: FinancingStack = Field(default_factory=FinancingStack)
    monte_carlo: MonteCarloSection = Field(default_factory=MonteCarloSection)

    @model_validator(mode="after")
    def _sites(self) -> Portfolio:
        for name, spec in self.sites.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", name):
                raise ValueError(f"sites.{name}: a site name is lower case letters, digits "
                                 "and _, starting with a letter (it names workbook rows)")
            if spec.file is None and self.base_case is None:
                raise ValueError(f"sites.{name}: give the site a file, or the portfolio a "
                                 "base_case to override")
        for where, opts in [("options", self.options)] + [
                (f"sites.{n}.options", s.options) for n, s in self.sites.items()
                if s.options is not None]:
            if len(set(opts.start_months)) != len(opts.start_months):
                raise ValueError(f"{where}.start_months: a month is listed twice")
            if len(set(opts.strategies)) != len(opts.strategies):
                raise ValueError(f"{where}.strategies: a strategy is listed twice")
        # Coupons fall every 12 / coupons_per_year months on the monthly timeline; checked
        # here (not when the plan is built) so that `finmodel validate` refuses it too, and
        # the note is named by its name, not its place in the list.
        notes = [(note_path(n.name), n) for n in self.financing.existing]
        for where, terms in notes + [("financing.new", self.financing.new)]:
            if 12 % terms.coupons_per_year:
                raise ValueError(f"{where}.coupons_per_year: {terms.coupons_per_year} does "
                                 "not divide the year into whole months; expected 1, 2, 3, "
                                 "4, 6 or 12")
        return self

    def options_of(self, site: str) -> OptionsSpec:
        return self.sites[site].options or self.options


def note_path(name: str) -> str:
    """An existing note's field path, named the way TOML quotes a key:
    ``financing.existing."4.00% notes due Nov 2031 [V1]"``."""
    return f"financing.existing.{json.dumps(name, ensure_ascii=False)}"


def month_index(month: str, start_month: str) -> int:
    """Months from ``start_month`` to ``month`` (both 'YYYY-MM')."""
    a, b = month_date(month), month_date(start_month)
    return (a.year - b.year) * 12 + a.month - b.month
