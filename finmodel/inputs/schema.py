"""Every input of a case, as pydantic models: units in names, bounds and a description on
every field. Strict at the boundary (unknown keys, wrong types and out-of-range values are
refused); model code trusts what passes."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from typing import Annotated

from finmodel.inputs.rules import FIRST_YEAR, LAST_YEAR, cross_field_problem
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)


def _check_month(v: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", v):
        raise ValueError("expected a month as 'YYYY-MM' (for example '2026-01')")
    if not FIRST_YEAR <= int(v[:4]) <= LAST_YEAR:
        raise ValueError(f"expected a month from {FIRST_YEAR}-01 to {LAST_YEAR}-12")
    return v


#: A calendar month written 'YYYY-MM'; the workbook shows it as the month's first day.
Month = Annotated[str, AfterValidator(_check_month)]


def month_date(v: str) -> dt.date:
    """The first day of a 'YYYY-MM' month."""
    year, month = map(int, v.split("-"))
    return dt.date(year, month, 1)


def _f(default: Any = ..., *, unit: str, description: str, **bounds: Any) -> Any:
    return Field(default, description=description, json_schema_extra={"unit": unit}, **bounds)


class _Section(BaseModel):
    # defer_build: a model's validator is built when it is first used, not when the class
    # is defined. A case is validated through Assumptions, whose validator holds every
    # section's schema: built at import, each of the ~20 sections' own validators were
    # ~0.05 s of `finmodel run` that only Assumptions' replaced.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


class CaseSection(_Section):
    """What the case is, when it starts, how long it runs and the rate it is valued at."""

    name: str = _f(unit="text", description="Case title shown on every sheet", min_length=1,
                   max_length=200)
    start_month: Month = _f(unit="YYYY-MM", description="First month of the model")
    horizon_years: int = _f(unit="years", description="Length of the model", ge=1, le=40)
    discount_rate: float = _f(unit="rate", description="Annual discount rate for NPV "
                              "(unlevered, nominal)", ge=0.0, le=1.0)

    @property
    def start_date(self) -> dt.date:
        return month_date(self.start_month)


class NetworkSection(_Section):
    """The Bitcoin network: block height, block time, fees, hashrate and BTC price paths."""

    block_height: int = _f(unit="blocks", description="Block height at the start of the "
                           "model; the next halving follows from it", ge=0, le=6_930_000)
    block_time_minutes: float = _f(10.0, unit="minutes", description="Average time between "
                                   "blocks (protocol target 10)", ge=1.0, le=60.0)
    fee_btc_per_block: float | None = _f(None, unit="BTC/block", description="Transaction "
                                         "fees per block (give this or fee_share_of_subsidy)",
                                         ge=0.0, le=50.0)
    fee_share_of_subsidy: float | None = _f(None, unit="share", description="Transaction fees "
                                            "as a share of the block subsidy", ge=0.0, le=10.0)
    hashrate_eh_s: float | None = _f(None, unit="EH/s", description="Network hashrate at the "
                                     "start (with hashrate_growth_rate)", gt=0.0)
    hashrate_growth_rate: float | None = _f(None, unit="rate", description="Annual growth of "
                                            "network hashrate", gt=-1.0, le=10.0)
    hashrate_path_eh_s: list[float] | None = _f(None, unit="EH/s", description="Network "
                                                "hashrate by model year (instead of a start "
                                                "and a growth rate)")
    hashrate_model: Literal["growth", "endogenous"] = _f(
        "growth", unit="choice", description="'growth': hashrate grows at "
        "hashrate_growth_rate (or follows its path); 'endogenous': it grows at most at that "
        "rate, slows as hashprice nears a reference fleet's cash cost and falls below it")
    reference_efficiency_j_per_th: float | None = _f(None, unit="J/TH", description="Efficiency"
                                                     " of the reference (marginal) fleet at "
                                                     "the start (endogenous hashrate)",
                                                     gt=0.0, le=500.0)
    reference_efficiency_improvement_rate: float = _f(0.0, unit="rate", description="Annual "
                                                      "fall in the reference fleet's J/TH",
                                                      ge=0.0, lt=1.0)
    reference_power_price_usd_per_mwh: float | None = _f(None, unit="USD/MWh", description=
                                                         "All-in power price of the reference"
                                                         " fleet (endogenous hashrate)",
                                                         gt=0.0, le=1_000.0)
    reference_power_escalator_rate: float = _f(0.0, unit="rate", description="Annual escalator"
                                               " of the reference power price", gt=-1.0,
                                               le=1.0)
    hashrate_adjustment_speed: float = _f(0.1, unit="ratio", description="Monthly hashrate "
                                          "growth factor = (hashprice / reference cash cost) "
                                          "** speed, at most the growth rate's", ge=0.0,
                                          le=5.0)
    btc_price_usd: float | None = _f(None, unit="USD/BTC", description="BTC price at the start"
                                     " (with btc_price_drift_rate)", gt=0.0)
    btc_price_drift_rate: float | None = _f(None, unit="rate", description="Annual drift of "
                                            "the BTC price", gt=-1.0, le=10.0)
    btc_price_path_usd: list[float] | None = _f(None, unit="USD/BTC", description="BTC price "
                                                "by model year (instead of a start and a drift)")

    @model_validator(mode="after")
    def _alternatives(self) -> NetworkSection:
        _one_of(self, "fee_btc_per_block", "fee_share_of_subsidy")
        _start_or_path(self, "hashrate_eh_s", "hashrate_growth_rate", "hashrate_path_eh_s")
        _start_or_path(self, "btc_price_usd", "btc_price_drift_rate", "btc_price_path_usd")
        if self.hashrate_model == "endogenous":
            for f in ("hashrate_eh_s", "hashrate_growth_rate", "reference_efficiency_j_per_th",
                      "reference_power_price_usd_per_mwh"):
                if getattr(self, f) is None:
                    raise ValueError(f"{f}: required by hashrate_model = 'endogenous' (a start"
                                     " hashrate, its largest growth rate, and the reference "
                                     "fleet's efficiency and power price)")
        return self


class SiteSection(_Section):
    """The powered site: grid interconnect and the IT load given to mining."""

    interconnect_mw: float = _f(unit="MW", description="Grid interconnect capacity", gt=0.0)
    mining_it_mw: float = _f(unit="MW", description="IT (ASIC) load the site gives to mining;"
                             " grid draw is this times the PUE", ge=0.0)


class PowerSection(_Section):
    """The site's power purchase agreement and delivery charges."""

    pricing: Literal["fixed", "indexed"] = _f(unit="choice", description="'fixed': PPA price "
                                              "with an annual escalator; 'indexed': market "
                                              "price plus an adder")
    contract_mw: float = _f(unit="MW", description="Contracted capacity of the PPA", gt=0.0)
    ppa_price_usd_per_mwh: float = _f(0.0, unit="USD/MWh", description="Fixed PPA energy "
                                      "price in the first year", ge=0.0, le=10_000.0)
    ppa_escalator_rate: float = _f(0.0, unit="rate", description="Annual escalator of the "
                                   "fixed PPA price", gt=-1.0, le=1.0)
    market_price_usd_per_mwh: float | None = _f(None, unit="USD/MWh", description="Market "
                                                "(hub) price at the start", ge=0.0,
                                                le=10_000.0)
    market_price_escalator_rate: float | None = _f(None, unit="rate", description="Annual "
                                                   "escalator of the market price", gt=-1.0,
                                                   le=1.0)
    market_price_path_usd_per_mwh: list[float] | None = _f(None, unit="USD/MWh",
                                                           description="Market price by model "
                                                           "year (instead of start and "
                                                           "escalator)")
    index_adder_usd_per_mwh: float = _f(0.0, unit="USD/MWh", description="Adder over the "
                                        "market price for an indexed PPA", ge=-1_000.0,
                                        le=1_000.0)
    take_or_pay_share: float = _f(0.0, unit="share", description="Share of contracted energy "
                                  "paid for whether used or not", ge=0.0, le=1.0)
    curtailment_credit_share: float = _f(0.0, unit="share", description="Share of the market "
                                         "price credited for paid-for energy left unused "
                                         "(sold back)", ge=0.0, le=1.0)
    transmission_usd_per_mwh: float = _f(0.0, unit="USD/MWh", description="Transmission "
                                         "charges on energy drawn", ge=0.0, le=1_000.0)
    other_charges_usd_per_mwh: float = _f(0.0, unit="USD/MWh", description="Other charges on "
                                          "energy drawn (ancillaries, fees)", ge=0.0,
                                          le=1_000.0)
    pue: float = _f(1.0, unit="ratio", description="Facility overhead: grid draw / IT load",
                    ge=1.0, le=3.0)

    @model_validator(mode="after")
    def _market(self) -> PowerSection:
        _start_or_path(self, "market_price_usd_per_mwh", "market_price_escalator_rate",
                       "market_price_path_usd_per_mwh")
        return self


class MiningSection(_Section):
    """The ASIC fleet, its refresh cycle and its operating costs."""

    hashrate_eh_s: float = _f(unit="EH/s", description="Installed fleet hashrate at the start",
                              gt=0.0, le=1_000.0)
    efficiency_j_per_th: float = _f(unit="J/TH", description="Fleet efficiency at the start",
                                    gt=0.0, le=500.0)
    purchase_price_usd_per_th: float = _f(0.0, unit="USD/TH", description="Price of the "
                                          "starting fleet, paid in the first month (0 for a "
                                          "fleet already owned)", ge=0.0, le=1_000.0)
    infrastructure_capex_usd_per_mw: float = _f(0.0, unit="USD/MW", description="Mining "
                                                "infrastructure built in the first month, per "
                                                "MW of mining IT load", ge=0.0, le=1e8)
    uptime: float = _f(1.0, unit="share", description="Share of time the fleet hashes when "
                       "running", gt=0.0, le=1.0)
    pool_fee_rate: float = _f(0.0, unit="share", description="Pool fee (FPPS) as a share of "
                              "rewards", ge=0.0, lt=1.0)
    opex_usd_per_mw_month: float = _f(0.0, unit="USD/MW-month", description="Site operating "
                                      "cost per MW of mining IT load", ge=0.0, le=1e7)
    opex_escalator_rate: float = _f(0.0, unit="rate", description="Annual inflation of "
                                    "operating cost", gt=-1.0, le=1.0)
    refresh_interval_years: int = _f(0, unit="years", description="Replace the fleet every N "
                                     "years (0 = never)", ge=0, le=40)
    refresh_price_usd_per_th: float = _f(0.0, unit="USD/TH", description="Price of new ASICs "
                                         "at the start (escalated by asic_price_change_rate)",
                                         ge=0.0, le=1_000.0)
    asic_price_change_rate: float = _f(0.0, unit="rate", description="Annual change of the "
                                       "USD/TH price of new ASICs", gt=-1.0, le=1.0)
    efficiency_improvement_rate: float = _f(0.0, unit="rate", description="Annual fall in J/TH"
                                            " of new ASICs", ge=0.0, lt=1.0)
    economic_curtailment: bool = _f(True, unit="flag", description="Stop the fleet in months "
                                    "when its revenue per MWh is below the marginal cost of "
                                    "power")
    fleet_owned: bool = _f(False, unit="flag", description="The starting fleet and the mining "
                           "infrastructure are already owned (paid for): nothing is bought at "
                           "the start. False: a greenfield build bought in the first month")
    fleet_age_years: float = _f(0.0, unit="years", description="Age of the starting fleet: its"
                                " first refresh falls due when it is refresh_interval_years "
                                "old", ge=0.0, le=40.0)
    fleet_book_value_usd: float = _f(0.0, unit="USD", description="Tax book value of an owned "
                                     "starting fleet, depreciated from the start (0: fully "
                                     "written off)", ge=0.0, le=1e12)
    standby_opex_usd_per_mw_month: float | None = _f(None, unit="USD/MW-month", description=
                                                     "Operating cost per MW of a mothballed "
                                                     "site (a fleet idle for the rest of the "
                                                     "horizon); default: the running opex",
                                                     ge=0.0, le=1e7)
    asic_price_tiers_j_per_th: list[float] | None = _f(None, unit="J/TH", description=
                                                       "Used-ASIC price curve at the start: "
                                                       "efficiencies, increasing (Hashrate "
                                                       "Index price tiers)")
    asic_price_tiers_usd_per_th: list[float] | None = _f(None, unit="USD/TH", description=
                                                         "Used-ASIC price curve at the start: "
                                                         "USD/TH at each efficiency of "
                                                         "asic_price_tiers_j_per_th")

    @model_validator(mode="after")
    def _price_curve(self) -> MiningSection:
        x, y = self.asic_price_tiers_j_per_th, self.asic_price_tiers_usd_per_th
        if (x is None) != (y is None):
            raise ValueError("asic_price_tiers_j_per_th and asic_price_tiers_usd_per_th: give "
                             "both (the curve's efficiencies and prices) or neither")
        if x is not None:
            if len(x) != len(y) or len(x) < 1:
                raise ValueError(f"asic_price_tiers_usd_per_th: expected one price per "
                                 f"efficiency of asic_price_tiers_j_per_th ({len(x)}), got "
                                 f"{len(y)}")
            if any(b <= a for a, b in zip(x, x[1:])) or x[0] <= 0:
                raise ValueError(f"asic_price_tiers_j_per_th: expected positive, strictly "
                                 f"increasing efficiencies, got {x}")
            if any(v < 0 or v > 1_000 for v in y):
                raise ValueError(f"asic_price_tiers_usd_per_th: expected prices in 0..1000 "
                                 f"USD/TH, got {y}")
        return self


class StrategySpec(_Section):
    """One way to use the site: keep mining, convert it all to AI hosting, or split."""

    kind: Literal["mining", "ai_hosting", "hybrid"] = _f(
        unit="choice", description="'mining': keep mining every MW; 'ai_hosting': convert "
        "every MW the site can give; 'hybrid': convert ai_it_mw and keep mining the rest")
    ai_it_mw: float | None = _f(None, unit="MW", description="Critical IT MW converted to AI "
                                "hosting (hybrid; for ai_hosting, at most what the site can "
                                "give)", gt=0.0)
    conversion_start_month: Month | None = _f(None, unit="YYYY-MM", description="Month the "
                                              "conversion starts: mining stops on the "
                                              "converted MW and construction begins")
    product: Literal["lease", "cloud"] = _f("lease", unit="choice", description="How the "
                                            "converted MW earn: 'lease' the hall to a tenant"
                                            " ([hosting]); 'cloud': buy GPUs and sell "
                                            "GPU-hours ([cloud])")
    mining_it_mw: float | None = _f(None, unit="MW", description="Mining IT MW kept after "
                                    "the conversion (hybrid; default: all the site has left)",
                                    ge=0.0)

    @model_validator(mode="after")
    def _fields_for_kind(self) -> StrategySpec:
        if self.kind == "mining" and (self.ai_it_mw is not None or self.mining_it_mw is not None
                                      or self.conversion_start_month is not None
                                      or self.product != "lease"):
            raise ValueError("a 'mining' strategy converts nothing: remove ai_it_mw, "
                             "mining_it_mw, product and conversion_start_month")
        if self.kind != "mining" and self.conversion_start_month is None:
            raise ValueError(f"a '{self.kind}' strategy needs conversion_start_month")
        if self.kind == "hybrid" and self.ai_it_mw is None:
            raise ValueError("a 'hybrid' strategy needs ai_it_mw (the MW it converts)")
        return self


class HostingSection(_Section):
    """The AI/HPC hosting lease signed for converted MW (critical IT)."""

    pue: float = _f(unit="ratio", description="Facility overhead of the AI data hall: grid "
                    "draw / critical IT load", ge=1.0, le=3.0)
    phase_it_shares: list[float] = _f(unit="share", description="Share of the converted IT "
                                      "MW delivered in each phase (sums to 1)")
    phase_ready_months: list[int] = _f(unit="months", description="Months from the "
                                       "conversion start until each phase is ready for "
                                       "service (its construction period)")
    phase_terms: Literal["own", "coterminous"] = _f("own", unit="choice", description=
                                                    "'own': each phase's initial term and "
                                                    "escalator run from its own commencement;"
                                                    " 'coterminous': every phase ends with "
                                                    "the first phase's term")
    rent_start_month: Month | None = _f(None, unit="YYYY-MM", description="Contractual rent "
                                        "commencement, if later than the first phase's "
                                        "readiness")
    lease_rate_usd_per_kw_month: float | None = _f(None, unit="USD/kW-month", description=
                                                   "Rent per kW of critical IT per month at "
                                                   "commencement (lease strategies)", gt=0.0,
                                                   le=10_000.0)
    lease_escalator_rate: float = _f(0.0, unit="rate", description="Annual rent escalator, "
                                     "stepped on each anniversary of commencement", ge=-0.5,
                                     le=0.5)
    term_years: float | None = _f(None, unit="years", description="Initial lease term from "
                                  "commencement (lease strategies)", gt=0.0, le=40.0)
    renewal_probability: float = _f(0.0, unit="share", description="Probability the tenant "
                                    "renews at the end of the term", ge=0.0, le=1.0)
    renewal_rate_reset_share: float = _f(1.0, unit="ratio", description="Renewal rent as a "
                                         "multiple of the expiring rent", ge=0.0, le=5.0)
    renewal_term_years: float = _f(0.0, unit="years", description="Length of the renewal",
                                   ge=0.0, le=40.0)
    power_pass_through: bool = _f(True, unit="flag", description="Tenant reimburses the power "
                                  "its load draws (else power is included in the rent)")
    pass_through_margin_share: float = _f(0.0, unit="share", description="Margin over cost on"
                                          " passed-through power", ge=0.0, le=1.0)
    it_load_factor: float = _f(0.8, unit="share", description="Average IT draw as a share of "
                               "contracted critical IT", gt=0.0, le=1.0)
    opex_usd_per_mw_year: float = _f(0.0, unit="USD/MW-year", description="Operating cost "
                                     "per MW of critical IT in service", ge=0.0, le=1e8)
    opex_escalator_rate: float = _f(0.0, unit="rate", description="Annual inflation of "
                                    "hosting opex", gt=-1.0, le=1.0)
    prepayment_share: float = _f(0.0, unit="share", description="Share of the initial-term "
                                 "contract value prepaid at signing", ge=0.0, le=1.0)
    prepayment_credit_months: int = _f(12, unit="months", description="Months over which the"
                                       " prepayment is credited against rent, from "
                                       "commencement", ge=1, le=480)
    prepayment_credit_delay_months: int = _f(0, unit="months", description="Months after "
                                             "commencement before the prepayment starts "
                                             "being credited", ge=0, le=480)
    security_deposit_months: float = _f(0.0, unit="months", description="Security deposit in"
                                        " months of full-ramp rent, paid at signing and "
                                        "returned at the end of the term", ge=0.0, le=60.0)
    security_deposit_restricted: bool = _f(False, unit="flag", description="The contract "
                                           "has the deposit held in a segregated (escrow) "
                                           "account: restricted cash, a liability matched by"
                                           " an asset, so neither its receipt nor its return "
                                           "is the project's free cash flow")
    tenant_default_probability_rate: float = _f(0.0, unit="rate", description="Annual "
                                                "probability of tenant default", ge=0.0,
                                                lt=1.0)
    loss_given_default_share: float = _f(1.0, unit="share", description="Share of rent lost "
                                         "after a default", ge=0.0, le=1.0)
    default_month: Month | None = _f(None, unit="YYYY-MM", description="Explicit tenant "
                                     "default: no rent from this month (a stress case)")
    sla_credit_share: float = _f(0.0, unit="share", description="SLA credits as a share of "
                                 "rent", ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _phases(self) -> HostingSection:
        if len(self.phase_it_shares) != len(self.phase_ready_months) or \
                not self.phase_it_shares:
            raise ValueError("phase_it_shares and phase_ready_months need one value per "
                             f"phase (got {len(self.phase_it_shares)} and "
                             f"{len(self.phase_ready_months)})")
        # ``not x > 0`` also refuses NaN, which every comparison lets through.
        if any(not x > 0 or x == float("inf") for x in self.phase_it_shares) or \
                not abs(sum(self.phase_it_shares) - 1) <= 1e-9:
            raise ValueError(f"phase_it_shares: expected positive shares summing to 1, got "
                             f"{self.phase_it_shares}")
        if any(m < 1 for m in self.phase_ready_months):
            raise ValueError(f"phase_ready_months: expected whole months >= 1, got "
                             f"{self.phase_ready_months}")
        return self


class CloudSection(_Section):
    """Selling compute instead of space: the owner buys the GPUs and sells GPU-hours."""

    gpu_residual_shares: list[float] | None = _f(None, unit="share", description="Resale "
                                                 "value of a GPU as a share of its cost, by "
                                                 "year of age (first: under one year old); "
                                                 "the GPUs in service are sold at it at the "
                                                 "horizon when the case has no terminal "
                                                 "value")

    gpus_per_mw: float = _f(unit="GPUs/MW", description="GPUs per MW of critical IT",
                            gt=0.0, le=10_000.0)
    gpu_price_usd: float = _f(unit="USD/GPU", description="All-in price per GPU (servers, "
                              "networking, storage)", ge=0.0, le=1e7)
    gpu_price_change_rate: float = _f(0.0, unit="rate", description="Annual change of the "
                                      "price of new GPUs (for refreshes)", gt=-1.0, le=1.0)
    gpu_life_years: float = _f(unit="years", description="GPU life: replaced (and "
                               "depreciated) over this many years", gt=0.0, le=20.0)
    price_usd_per_gpu_hour: float = _f(unit="USD/GPU-hour", description="Price of a GPU-hour"
                                       " sold on a new GPU", gt=0.0, le=1_000.0)
    price_change_rate: float = _f(0.0, unit="rate", description="Annual change of the "
                                  "GPU-hour price as a generation ages (a refresh resets it)",
                                  gt=-1.0, le=1.0)
    utilisation_share: float = _f(unit="share", description="Share of GPU-hours sold",
                                  gt=0.0, le=1.0)
    opex_usd_per_mw_year: float = _f(0.0, unit="USD/MW-year", description="Cloud operating "
                                     "cost per MW of critical IT in service (instead of "
                                     "hosting opex)", ge=0.0, le=1e9)
    opex_escalator_rate: float = _f(0.0, unit="rate", description="Annual inflation of cloud"
                                    " opex", gt=-1.0, le=1.0)


class ConversionSection(_Section):
    """What converting a MW to AI hosting costs, how it is paid and depreciated."""

    electrical_usd_per_mw: float = _f(unit="USD/MW", description="Electrical (substation, "
                                      "UPS, switchgear) per MW of critical IT", ge=0.0,
                                      le=1e9)
    cooling_usd_per_mw: float = _f(unit="USD/MW", description="Cooling (liquid, chillers) per"
                                   " MW of critical IT", ge=0.0, le=1e9)
    building_usd_per_mw: float = _f(unit="USD/MW", description="Shell and building works per "
                                    "MW of critical IT", ge=0.0, le=1e9)
    fit_out_usd_per_mw: float = _f(unit="USD/MW", description="White space and fit-out "
                                   "(GPUs too, when the owner supplies them) per MW of "
                                   "critical IT", ge=0.0, le=1e9)
    contingency_share: float = _f(0.0, unit="share", description="Contingency on all "
                                  "categories", ge=0.0, le=2.0)
    draw_curve: Literal["even", "s_curve"] = _f("s_curve", unit="choice", description="How "
                                                "each phase's capex is drawn over its "
                                                "construction months")
    asic_sale_price_usd_per_th: float = _f(0.0, unit="USD/TH", description="Proceeds per TH "
                                           "of ASICs displaced by the conversion", ge=0.0,
                                           le=1_000.0)
    sustaining_capex_usd_per_mw_year: float = _f(0.0, unit="USD/MW-year", description=
                                                 "Sustaining capex per MW of IT in service",
                                                 ge=0.0, le=1e8)
    electrical_life_years: float = _f(15.0, unit="years", description="Depreciation life, "
                                      "electrical", gt=0.0, le=50.0)
    cooling_life_years: float = _f(15.0, unit="years", description="Depreciation life, "
                                   "cooling", gt=0.0, le=50.0)
    building_life_years: float = _f(39.0, unit="years", description="Depreciation life, "
                                    "building", gt=0.0, le=50.0)
    fit_out_life_years: float = _f(5.0, unit="years", description="Depreciation life, "
                                   "fit-out", gt=0.0, le=50.0)


class TaxSection(_Section):
    """Corporate income tax, computed month by month on each strategy's taxable income."""

    rate: float = _f(unit="rate", description="Corporate income tax rate (US federal 21 %)",
                     ge=0.0, le=0.6)
    depreciation: Literal["straight_line", "macrs"] = _f(
        "macrs", unit="choice", description="Tax depreciation: straight line over each "
        "category's life, or MACRS half-year tables (5, 7, 15 years; other lives straight "
        "line)")
    bonus_depreciation_share: float = _f(0.0, unit="share", description="Share of qualified "
                                         "property (lives of 20 years or less) expensed when "
                                         "placed in service", ge=0.0, le=1.0)
    mining_asset_life_years: float = _f(5.0, unit="years", description="Tax life of ASICs "
                                        "and mining infrastructure", gt=0.0, le=40.0)
    gpu_life_years: float = _f(5.0, unit="years", description="Tax life of GPUs (cloud)",
                               gt=0.0, le=40.0)
    nol_usage_limit_share: float = _f(0.8, unit="share", description="Share of taxable "
                                      "income that losses carried forward may offset", ge=0.0,
                                      le=1.0)
    interest_limit_share: float = _f(0.3, unit="share", description="Deductible interest as "
                                     "a share of EBITDA (adjusted taxable income)", ge=0.0,
                                     le=10.0)


class DebtSection(_Section):
    """A term loan on a converting strategy's contracted cash flows, drawn at commencement."""

    sizing: Literal["dscr", "amount"] = _f("dscr", unit="choice", description="'dscr': sized "
                                           "and sculpted so that cash flow available for debt "
                                           "service / debt service = target_dscr each month; "
                                           "'amount': a stated amount")
    target_dscr: float = _f(1.35, unit="ratio", description="Target debt service cover ratio",
                            ge=1.0, le=10.0)
    max_loan_to_cost_share: float = _f(0.8, unit="share", description="Cap on the loan as a "
                                       "share of conversion capex", ge=0.0, le=1.0)
    amount_usd: float = _f(0.0, unit="USD", description="Loan amount (sizing 'amount')",
                           ge=0.0, le=1e12)
    amortisation: Literal["annuity", "straight"] = _f("annuity", unit="choice", description=
                                                      "Repayment profile of a stated amount")
    rate: float = _f(unit="rate", description="Annual interest rate", ge=0.0, le=0.5)
    tenor_years: float = _f(unit="years", description="Years from drawdown to final "
                            "repayment", gt=0.0, le=40.0)
    upfront_fee_share: float = _f(0.0, unit="share", description="Arrangement fee as a share "
                                  "of the loan, paid at drawdown", ge=0.0, le=0.2)
    cash_sweep_share: float = _f(0.0, unit="share", description="Share of the AI hall's cash "
                                 "left after scheduled debt service used to prepay the loan",
                                 ge=0.0, le=1.0)
    dsra_months: float = _f(0.0, unit="months", description="Debt service reserve, in months "
                            "of the first debt service, funded at drawdown and released at "
                            "maturity", ge=0.0, le=24.0)


class ConvertibleSection(_Section):
    """A convertible note issued to fund the conversion (cash flows, dilution, capped call)."""

    principal_usd: float = _f(unit="USD", description="Principal", gt=0.0, le=1e12)
    issue_month: Month = _f(unit="YYYY-MM", description="Month of issue")
    issue_price_share: float = _f(1.0, unit="share", description="Issue price as a share of "
                                  "par", gt=0.0, le=2.0)
    issuance_cost_share: float = _f(0.0, unit="share", description="Underwriting and other "
                                    "costs as a share of principal", ge=0.0, le=0.2)
    coupon_rate: float = _f(unit="rate", description="Annual coupon", ge=0.0, le=0.3)
    coupons_per_year: int = _f(2, unit="count", description="Coupon frequency", ge=1, le=12)
    term_years: float = _f(unit="years", description="Years from issue to maturity", gt=0.0,
                           le=30.0)
    conversion_price_usd: float | None = _f(None, unit="USD/share", description="Conversion "
                                            "price (give this, conversion_premium_share or "
                                            "conversion_rate_per_1000)", gt=0.0, le=1e6)
    conversion_premium_share: float | None = _f(None, unit="share", description="Conversion "
                                                "price as a premium over "
                                                "financing.share_price_usd", ge=0.0, le=10.0)
    conversion_rate_per_1000: float | None = _f(None, unit="shares", description="Shares "
                                                "per $1,000 of principal", gt=0.0, le=1e6)
    call_from_years: float | None = _f(None, unit="years", description="Issuer may call "
                                       "(forcing conversion) from this many years after "
                                       "issue...", gt=0.0, le=30.0)
    call_trigger_share: float = _f(1.3, unit="ratio", description="...when the share price is"
                                   " at least this multiple of the conversion price",
                                   ge=1.0, le=5.0)
    put_years: float | None = _f(None, unit="years", description="Holders may put at par this"
                                 " many years after issue (they do when the note is out of "
                                 "the money)", gt=0.0, le=30.0)
    settlement: Literal["physical", "net_share"] = _f("net_share", unit="choice", description=
                                                      "On conversion: 'physical' all in "
                                                      "shares; 'net_share' principal in cash, "
                                                      "the excess in shares")
    capped_call_cap_price_usd: float | None = _f(None, unit="USD/share", description="Cap of "
                                                 "the capped call bought at issue (none if "
                                                 "absent)", gt=0.0, le=1e6)
    capped_call_cost_usd: float = _f(0.0, unit="USD", description="Premium paid for the "
                                     "capped call at issue", ge=0.0, le=1e12)
    credit_spread: float = _f(0.05, unit="rate", description="Issuer credit spread over the "
                              "risk-free rate (lattice valuation)", ge=0.0, le=0.3)
    risk_free_rate: float = _f(0.04, unit="rate", description="Risk-free rate (lattice)",
                               ge=0.0, le=0.3)
    volatility: float = _f(0.6, unit="rate", description="Share price volatility (lattice)",
                           gt=0.0, le=3.0)

    @model_validator(mode="after")
    def _conversion_terms(self) -> ConvertibleSection:
        given = [x for x in ("conversion_price_usd", "conversion_premium_share",
                             "conversion_rate_per_1000") if getattr(self, x) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of conversion_price_usd, "
                             f"conversion_premium_share and conversion_rate_per_1000 (got "
                             f"{given or 'none'})")
        return self


class FinancingSection(_Section):
    """How converting strategies pay for their capex, and the company's shares."""

    cost_of_equity_rate: float = _f(unit="rate", description="Annual discount rate for equity"
                                    " cash flows", ge=0.0, le=1.0)
    shares_outstanding: float = _f(unit="shares", description="Shares outstanding before the "
                                   "financing", gt=0.0, le=1e12)
    share_price_usd: float = _f(unit="USD/share", description="Share price at the start "
                                "(reference for the convertible)", gt=0.0, le=1e6)
    share_price_drift_rate: float = _f(0.0, unit="rate", description="Annual drift of the "
                                       "share price path used to decide conversion",
                                       gt=-1.0, le=5.0)
    minimum_cash_usd: float = _f(0.0, unit="USD", description="Least cash the company holds "
                                 "at every month end; equity funds any month that would "
                                 "end below it", ge=0.0, le=1e12)
    equity_commitment_usd: float | None = _f(None, unit="USD", description="Most equity the"
                                             " shareholders put in over the horizon (omit: "
                                             "no limit)", ge=0.0, le=1e13)
    debt: DebtSection | None = None
    convertible: ConvertibleSection | None = None


class Correlation(_Section):
    """Correlation between two sampled inputs (Gaussian copula)."""

    a: str = _f(unit="path", description="Field path of the first input")
    b: str = _f(unit="path", description="Field path of the second input")
    rho: float = _f(unit="ratio", description="Correlation", gt=-1.0, lt=1.0)


class MonteCarloSpec(_Section):
    """Monte Carlo settings: scenarios, seed, stochastic paths, input distributions."""

    scenarios: int = _f(1000, unit="count", description="Number of scenarios", ge=1,
                        le=10_000_000)
    seed: int = _f(0, unit="count", description="Random seed: the same seed gives the same "
                   "numbers", ge=0)
    btc_price_volatility: float = _f(0.0, unit="rate", description="Annual volatility of "
                                     "the BTC price path (geometric Brownian motion around "
                                     "the case's path)", ge=0.0, le=5.0)
    hashrate_volatility: float = _f(0.0, unit="rate", description="Annual volatility of the "
                                    "network hashrate path", ge=0.0, le=5.0)
    path_correlation: float = _f(0.0, unit="ratio", description="Correlation of the BTC price"
                                 " and hashrate shocks", ge=-1.0, le=1.0)
    distributions: dict[str, dict[str, float | str]] = Field(
        default_factory=dict, description="Field path -> {dist = 'normal' | 'lognormal' | "
        "'triangular' | 'uniform', and its parameters}")
    correlations: list[Correlation] = Field(default_factory=list,
                                            description="Correlations between inputs")


class AnalysisSection(_Section):
    """What `finmodel sensitivity` runs on the case."""

    metric: str = _f("npv_usd", unit="text", description="Metric the tornado and grid show")
    strategy: str | None = _f(None, unit="text", description="Strategy they show (default: "
                              "the first converting strategy, else mining)")
    scenarios: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Named scenario sets: name -> {field path = value}")
    tornado: dict[str, float | list[float]] = Field(
        default_factory=dict, description="Field path -> a fraction (base -/+ it) or "
        "[low, high]")
    grid: dict[str, list[float]] = Field(default_factory=dict, description="Two field paths "
                                         "-> the values to combine")
    monte_carlo: MonteCarloSpec = Field(default_factory=MonteCarloSpec)


class ValuationSection(_Section):
    """Value at the horizon."""

    terminal_method: Literal["none", "exit_multiple", "perpetuity_growth",
                             "lease_renewal"] = _f(
        "none", unit="choice", description="Terminal value at the horizon: none, an EBITDA "
        "multiple, a growing perpetuity of free cash flow, or that perpetuity with the AI "
        "hall re-let: rent reset by release_rent_share and release_capex_usd_per_mw spent "
        "every release_term_years")
    exit_multiple: float = _f(0.0, unit="x", description="EV / last-twelve-months EBITDA at "
                              "the horizon", ge=0.0, le=50.0)
    terminal_growth_rate: float = _f(0.0, unit="rate", description="Growth of free cash flow"
                                     " after the horizon", ge=-0.5, le=0.2)
    release_capex_usd_per_mw: float = _f(0.0, unit="USD/MW", description="lease_renewal: "
                                         "capex to re-let the AI hall (refit, leasing "
                                         "commissions, tenant improvements) per MW of AI IT, "
                                         "spent at the horizon and at every renewal after it",
                                         ge=0.0, le=1e8)
    release_term_years: float = _f(10.0, unit="years", description="lease_renewal: the term "
                                   "of each renewed lease (how often the re-letting capex "
                                   "recurs)", gt=0.0, le=40.0)
    release_rent_share: float = _f(1.0, unit="ratio", description="lease_renewal: renewed "
                                   "rent as a multiple of the last twelve months' rent (the "
                                   "mark-to-market at re-letting)", ge=0.0, le=5.0)
    salvage_usd_per_mw: float = _f(0.0, unit="USD/MW", description="Floor of the terminal "
                                   "value per MW of interconnect (what the powered site sells "
                                   "for as land and a grid connection): a multiple of negative"
                                   " EBITDA never takes the value below it", ge=0.0, le=1e8)


class Assumptions(_Section):
    """A whole case file."""

    # Where the case was read from (file name, SHA-256), for the workbook's stamp.
    _source: Any = PrivateAttr(default=None)

    case: CaseSection
    network: NetworkSection
    site: SiteSection
    power: PowerSection
    mining: MiningSection
    strategies: dict[str, StrategySpec] = Field(
        default_factory=lambda: {"mining": StrategySpec(kind="mining")},
        description="The strategies to compare, by name; 'mining' (keep mining) is the "
        "reference every other is compared with")
    hosting: HostingSection | None = None
    cloud: CloudSection | None = None
    conversion: ConversionSection | None = None
    valuation: ValuationSection = Field(default_factory=ValuationSection)
    tax: TaxSection | None = None
    financing: FinancingSection | None = None
    analysis: AnalysisSection = Field(default_factory=AnalysisSection)
    input_sources: dict[str, Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=dict, description="Input sources: field path -> where its value "
        "comes from, shown beside the input on the Inputs sheet; a fact ID of "
        "shared/reference/industry_facts.md such as '[B20]', or 'EST' for an estimate "
        "(example: \"network.btc_price_usd\" = \"[B20]\")")

    @model_validator(mode="after")
    def _site_fits(self) -> Assumptions:
        years = self.case.horizon_years
        for section, name in (("network", "hashrate_path_eh_s"),
                              ("network", "btc_price_path_usd"),
                              ("power", "market_price_path_usd_per_mwh")):
            path = getattr(getattr(self, section), name)
            if path is not None and len(path) < years:
                raise ValueError(
                    f"{section}.{name}: has {len(path)} values; expected one per model year, "
                    f"at least case.horizon_years = {years}"
                )
        self._check_strategies()
        problem = cross_field_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _sources_name_inputs(self) -> Assumptions:
        # After the other rules, whose messages say more about a wrong case.
        for path in self.input_sources:
            node: Any = self
            for part in path.split("."):
                if isinstance(node, dict) and part in node:
                    node = node[part]
                elif isinstance(node, BaseModel) and part in type(node).model_fields \
                        and part not in ("analysis", "input_sources"):
                    node = getattr(node, part)
                else:
                    node = None
                    break
            if node is None or isinstance(node, (BaseModel, dict)):
                raise ValueError(f"input_sources: {path!r} is not an input of this case "
                                 "(a field path such as 'network.btc_price_usd')")
        return self

    def _check_strategies(self) -> None:
        specs = self.strategies
        if "mining" not in specs or specs["mining"].kind != "mining":
            raise ValueError("strategies.mining: the reference strategy 'mining' (kind = "
                             "'mining') is required")
        for name, spec in specs.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", name):
                raise ValueError(f"strategies.{name}: a strategy name is lower case letters, "
                                 "digits and _, starting with a letter (it becomes part of "
                                 "workbook names)")
            if spec.kind == "mining":
                continue
            where = f"strategies.{name}"
            if self.hosting is None or self.conversion is None:
                raise ValueError(f"{where}: converting needs the [hosting] (the data hall) "
                                 "and [conversion] sections")
            if spec.product == "cloud" and self.cloud is None:
                raise ValueError(f"{where}.product: 'cloud' needs a [cloud] section")
            if spec.product == "lease":
                for field in ("lease_rate_usd_per_kw_month", "term_years"):
                    if getattr(self.hosting, field) is None:
                        raise ValueError(f"hosting.{field}: required by the lease of {where}")
            if spec.kind == "ai_hosting" and spec.mining_it_mw is not None:
                raise ValueError(f"{where}.mining_it_mw: an 'ai_hosting' strategy keeps no "
                                 "mining; use kind = 'hybrid'")

    def ai_it_mw(self, strategy: str) -> float:
        """Critical IT MW a strategy converts ('ai_hosting': all the site can give)."""
        spec = self.strategies[strategy]
        if spec.kind == "mining":
            return 0.0
        most = self.site.interconnect_mw / self.hosting.pue
        if spec.kind == "ai_hosting":
            return most if spec.ai_it_mw is None else spec.ai_it_mw
        return spec.ai_it_mw

    def mining_it_mw_after(self, strategy: str) -> float:
        """Mining IT MW left once a strategy's conversion starts."""
        spec = self.strategies[strategy]
        if spec.kind != "hybrid":
            return self.site.mining_it_mw if spec.kind == "mining" else 0.0
        if spec.mining_it_mw is not None:
            return min(spec.mining_it_mw, self.site.mining_it_mw)
        spare = self.site.interconnect_mw - self.ai_it_mw(strategy) * self.hosting.pue
        return max(0.0, min(self.site.mining_it_mw, spare / self.power.pue))


def _one_of(model: BaseModel, a: str, b: str) -> None:
    va, vb = getattr(model, a), getattr(model, b)
    if (va is None) == (vb is None):
        raise ValueError(f"give exactly one of {a} and {b} (got {va!r} and {vb!r})")


def _start_or_path(model: BaseModel, start: str, rate: str, path: str) -> None:
    vs, vr, vp = getattr(model, start), getattr(model, rate), getattr(model, path)
    if vp is None and vs is None:
        raise ValueError(f"give {start} (with {rate}) or {path}")
    if vp is not None and (vs is not None or vr is not None):
        raise ValueError(f"give either {path} or {start}/{rate}, not both")
    if vp is not None:
        if len(vp) == 0 or any(x <= 0 for x in vp):
            raise ValueError(f"{path}: expected a list of positive numbers, got {vp!r}")
