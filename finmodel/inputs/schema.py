"""Every input of a case, as pydantic models: units in names, bounds and a description on
every field. Strict at the boundary (unknown keys, wrong types and out-of-range values are
refused); model code trusts what passes."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator


def _f(default: Any = ..., *, unit: str, description: str, **bounds: Any) -> Any:
    return Field(default, description=description, json_schema_extra={"unit": unit}, **bounds)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CaseSection(_Section):
    """What the case is, when it starts, how long it runs and the rate it is valued at."""

    name: str = _f(unit="text", description="Case title shown on every sheet", min_length=1,
                   max_length=200)
    start_month: str = _f(unit="YYYY-MM", description="First month of the model")
    horizon_years: int = _f(unit="years", description="Length of the model", ge=1, le=40)
    discount_rate: float = _f(unit="rate", description="Annual discount rate for NPV "
                              "(unlevered, nominal)", ge=0.0, le=1.0)

    @field_validator("start_month")
    @classmethod
    def _month(cls, v: str) -> str:
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", v):
            raise ValueError(f"expected a month as 'YYYY-MM' (for example '2026-01'), got {v!r}")
        return v

    @property
    def start_date(self) -> dt.date:
        year, month = map(int, self.start_month.split("-"))
        return dt.date(year, month, 1)


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


class Assumptions(_Section):
    """A whole case file."""

    # Where the case was read from (file name, SHA-256), for the workbook's stamp.
    _source: Any = PrivateAttr(default=None)

    case: CaseSection
    network: NetworkSection
    site: SiteSection
    power: PowerSection
    mining: MiningSection

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
        draw = self.site.mining_it_mw * self.power.pue
        if draw > self.site.interconnect_mw * (1 + 1e-12):
            raise ValueError(
                f"site.mining_it_mw: {self.site.mining_it_mw:g} MW x power.pue "
                f"{self.power.pue:g} = {draw:g} MW of grid draw exceeds site.interconnect_mw "
                f"= {self.site.interconnect_mw:g} MW"
            )
        if self.power.contract_mw > self.site.interconnect_mw * (1 + 1e-12):
            raise ValueError(
                f"power.contract_mw: {self.power.contract_mw:g} MW exceeds "
                f"site.interconnect_mw = {self.site.interconnect_mw:g} MW"
            )
        return self


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
