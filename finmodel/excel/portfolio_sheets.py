"""The plan workbook: Portfolio, Company and Sites sheets (``finmodel portfolio -o``).

- **Sites**: each site's chosen option, month by month, as computed by its own run of the
  single-site model (values with their source named), its capex rolled up by year with live
  ``SUMIF`` formulas, and its NPV. Each site's full live model is its own workbook
  (``finmodel portfolio --site-workbooks DIR``): one site's model is about
  50,000 formulas, so seven of them in one file would make the plan slow to open and to
  recalculate, while the company view only needs each site's cash line. Those workbooks
  are linked from the Sites sheet when written.
- **Company**: the consolidated monthly cash flow as live formulas over the Sites lines,
  the company's own flows (overhead from its inputs; the notes' schedules), the cash
  balance, the funding gap, the new money, equity value and value per share before and
  after the plan.
- **Portfolio**: sites x decision, NPV, capex by year against the budget (live), the
  constraints with their shadow prices, the greedy ranking beside the optimiser; charts of
  capex by year against the budget and of NPV by site and decision.

Text from input files (site labels, note names) is written as strings, never formulas.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xlsxwriter
from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

from finmodel.excel.labels import _USD_M, shown_unit
from finmodel.excel.workbook import _Styles
from finmodel.outputs import Outputs

if TYPE_CHECKING:  # pragma: no cover
    from finmodel.portfolio.plan import Plan

FIRST_COL = 4  # E: A label, B unit, C total or value, D key
#: What proved the plan (``Solution.solver``), as the Portfolio sheet names it.
SOLVER_NAMES = {"highs": "scipy.optimize.milp (HiGHS)",
                "cpsat": "OR-Tools CP-SAT (proof checked against the float problem)"}
LABEL_WIDTH = 46  # column A of the Company and Sites sheets (wider, December moves off its
#                   calendar-year A3 page); longer labels wrap
TOP = 6


def export_plan(plan: Plan, path: str | os.PathLike[str],
                site_links: dict[str, str] | None = None) -> Path:
    """Write the plan workbook atomically (a temporary file, then a rename), with the
    checks and clean-up every output of finmodel gets (:class:`finmodel.outputs.Outputs`).

    ``site_links`` maps a site to the relative path of its own workbook, shown as a link.

    Raises
    ------
    ExportError
        The name does not end in .xlsx, the folder is missing or not writable, or the
        file cannot be written (the target is then left as it was).
    """
    out = Outputs()
    target = out.target(path, ".xlsx", "plan workbook")
    out.commit([(target, lambda tmp: _write(plan, str(tmp), site_links or {}))])
    return target


#: Units of the plan workbook whose number format differs from the single-site workbook's,
#: and how each unit is printed beside its figure (money is stored in dollars and shown in
#: millions, so a formula still reads whole dollars).
_NUM_FORMATS = {"USD/year": _USD_M, "shares/USD": "0.000000", "USD/USD": "0.0000"}
_SHOWN = {"USD/year": "USD m/year", "USD/USD": "USD per USD"}


def _shown(unit: str) -> str:
    return _SHOWN.get(unit, shown_unit(unit))


class _PlanStyles(_Styles):
    """The workbook's styles with the plan's own units (overhead a year in USD millions,
    shares per dollar to six decimals: 0.0717 showed as 0.07)."""

    def __init__(self, wb) -> None:
        super().__init__(wb)
        self.label_wrap = wb.add_format({**self.base, "text_wrap": True})

    def cell(self, unit: str, kind: str = "calc", bold: bool = False):
        fmt = super().cell(unit, kind, bold)
        if unit in _NUM_FORMATS:
            fmt.set_num_format(_NUM_FORMATS[unit])
        return fmt


class _Sheet:
    """Row bookkeeping for a sheet with one column per month."""

    def __init__(self, ws, st, n: int) -> None:
        self.ws, self.st, self.n = ws, st, n
        self.row = TOP
        self.keys: dict[str, int] = {}

    def col(self, t: int) -> int:
        return FIRST_COL + t

    def span(self, key: str, absolute: bool = False) -> str:
        r = self.keys[key]
        a = xl_rowcol_to_cell(r, FIRST_COL, absolute, absolute)
        b = xl_rowcol_to_cell(r, FIRST_COL + self.n - 1, absolute, absolute)
        return f"{a}:{b}"

    def cell(self, key: str, t: int | None = None, absolute: bool = True) -> str:
        r = self.keys[key]
        c = 2 if t is None else FIRST_COL + t
        return xl_rowcol_to_cell(r, c, absolute, absolute)

    def label(self, key: str, text: str, unit: str) -> int:
        r = self.row
        self.keys[key] = r
        # A label wider than column A wraps onto a taller row: cut at the column, the notes'
        # labels lost their last words ("converts", "repaid").
        lines = _lines(text, LABEL_WIDTH)
        self.ws.write_string(r, 0, text, self.st.label_wrap if lines > 1 else self.st.label)
        if lines > 1:
            self.ws.set_row(r, _LINE_PT * lines + 1)
        self.ws.write_string(r, 1, _shown(unit), self.st.unit)
        self.ws.write_string(r, 3, key, self.st.name)
        self.row += 1
        return r

    def section(self, title: str) -> None:
        self.row += 1
        self.ws.write_string(self.row, 0, title, self.st.section)
        for c in range(1, FIRST_COL):
            self.ws.write_blank(self.row, c, None, self.st.section)
        self.row += 1

    def values_row(self, key: str, text: str, unit: str, values: np.ndarray) -> None:
        r = self.label(key, text, unit)
        fmt = self.st.cell(unit)
        for t, v in enumerate(values):
            self.ws.write_number(r, self.col(t), float(v), fmt)
        self._total(r, values, unit)

    def formula_row(self, key: str, text: str, unit: str, make, values: np.ndarray,
                    kind: str = "calc", total: bool = True) -> None:
        """``make(t)`` returns the formula of month t (without '=')."""
        r = self.label(key, text, unit)
        fmt = self.st.cell(unit, kind)
        for t in range(self.n):
            self.ws.write_formula(r, self.col(t), "=" + make(t), fmt, float(values[t]))
        if total:
            self._total(r, values, unit)

    def _total(self, r: int, values: np.ndarray, unit: str) -> None:
        if unit == "USD":
            self.ws.write_formula(r, 2, f"=SUM({self.span(self._key_of(r))})",
                                  self.st.cell(unit, bold=True), float(np.sum(values)))

    def _key_of(self, r: int) -> str:
        return next(k for k, v in self.keys.items() if v == r)

    def scalar(self, key: str, text: str, unit: str, formula: str | None, value: float,
               kind: str = "calc") -> None:
        r = self.label(key, text, unit)
        fmt = self.st.cell(unit, kind, bold=kind == "calc")
        if formula is None:
            self.ws.write_number(r, 2, float(value), fmt)
        else:
            self.ws.write_formula(r, 2, "=" + formula, fmt, float(value))

    def header(self, title: str, subtitle: str, periods) -> None:
        self.ws.write_string(0, 0, title, self.st.title)
        self.ws.write_string(1, 0, subtitle, self.st.subtitle)
        self.ws.write_string(3, 0, "Month", self.st.header_left)
        self.ws.write_string(4, 0, "Calendar year", self.st.header_left)
        for c in range(1, FIRST_COL):
            self.ws.write_blank(3, c, None, self.st.header_left)
            self.ws.write_blank(4, c, None, self.st.header_left)
        self.ws.write_string(3, 2, "Total / value", self.st.header)
        for t, p in enumerate(periods):
            self.ws.write_datetime(3, self.col(t), dt.datetime(p.year, p.month, 1),
                                   self.st.cell("date", "header_date"))
            self.ws.write_number(4, self.col(t), p.year, self.st.header)
        self.ws.set_column(0, 0, LABEL_WIDTH)
        self.ws.set_column(1, 1, 12)
        self.ws.set_column(2, 2, 16)
        self.ws.set_column(3, 3, 22)
        self.ws.set_column(FIRST_COL, FIRST_COL + self.n - 1, 12)
        self.ws.freeze_panes(5, FIRST_COL)
        # Printed a calendar year to an A3 page (the way long monthly models are printed):
        # the labels (column A) and month headers repeat. Fitting 180 months to one page
        # tall printed 40-odd pages of half-years; Excel ignores page breaks under "fit".
        _print_setup(self.ws, fit_width=False, paper=8)
        self.ws.repeat_columns(0, 0)
        self.ws.repeat_rows(3, 4)
        self.ws.set_print_scale(62)
        self.ws.set_v_pagebreaks([self.col(t) for t, p in enumerate(periods)
                                  if p.month == 1 and t > 0])


def _write(plan: Plan, path: str, links: dict[str, str]) -> None:
    from finmodel import __version__
    from finmodel.portfolio.company import overhead_terminal_usd

    wb = xlsxwriter.Workbook(path, {"strings_to_formulas": False, "strings_to_urls": False,
                                    "nan_inf_to_errors": True})
    wb.set_calc_mode("auto")
    spec = plan.portfolio.spec
    wb.set_properties({"title": spec.company.name, "author": "finmodel"})
    st = _PlanStyles(wb)
    ws_p = wb.add_worksheet("Portfolio")
    ws_c = wb.add_worksheet("Company")
    ws_s = wb.add_worksheet("Sites")
    opts, sol = plan.options, plan.solution
    chosen = plan.chosen
    sq = opts.take(_status_quo(plan))
    n = len(opts.periods)
    years = [int(y) for y in opts.years]

    # ---- Sites: each chosen option's lines, from its own run ---------------------------
    s = _Sheet(ws_s, st, n)
    s.header("Sites", "Each site's chosen option, from its own run of the single-site model "
             "(values: change a site's case and run finmodel portfolio again)", opts.periods)
    s.section("Chosen option: free cash flow without terminal value (USD m, money in +)")
    for k, site in enumerate(chosen.site):
        s.values_row(f"cash.{site}", f"{_label(spec, site)}: {chosen.label(k)}", "USD",
                     chosen.cash_usd[k])
    s.section("Chosen option: capex counted against the budget "
              f"({spec.constraints.capex_scope})")
    for k, site in enumerate(chosen.site):
        s.values_row(f"capex.{site}", f"{_label(spec, site)}: capex", "USD",
                     chosen.capex_usd[k])
    s.section("NPV (each site's case discount rate)")
    for k, site in enumerate(chosen.site):
        s.scalar(f"npv.{site}", f"{_label(spec, site)}: {chosen.label(k)}", "USD", None,
                 chosen.npv_usd[k], kind="value")
        if site in links:
            ws_s.write_url(s.keys[f"npv.{site}"], 4, f"external:{links[site]}",
                           string=f"open {links[site]}")
    for k, site in enumerate(sq.site):
        s.scalar(f"npv_keep.{site}", f"{_label(spec, site)}: keep mining", "USD", None,
                 sq.npv_usd[k], kind="value")
    s.section("Capex by calendar year (live: SUMIF over the monthly capex)")
    ws_s.write_string(s.row, 0, "Site \\ year", st.header_left)
    for j, y in enumerate(years):
        ws_s.write_number(s.row, FIRST_COL + j, y, st.header)
    head = s.row
    s.row += 1
    by_year = chosen.capex_by_year()
    for k, site in enumerate(chosen.site):
        r = s.label(f"capex_year.{site}", f"{_label(spec, site)}: capex", "USD")
        for j, y in enumerate(years):
            ws_s.write_formula(
                r, FIRST_COL + j, f"=SUMIF({_abs_row(4, n)},{xl_rowcol_to_cell(head, FIRST_COL + j, True, False)},{s.span(f'capex.{site}', True)})",
                st.cell("USD"), float(by_year.loc[k, y]))
    capex_rows = (s.keys[f"capex_year.{chosen.site[0]}"],
                  s.keys[f"capex_year.{chosen.site[-1]}"])

    # ---- Company ------------------------------------------------------------------------
    c = _Sheet(ws_c, st, n)
    v = plan.company
    c.header("Company", f"{spec.company.name} | money in USD millions (stored in USD); "
             "in +, out -; live formulas over "
             "the Sites lines and the inputs below", opts.periods)
    co, cons, fl = spec.company, spec.constraints, plan.flows
    c.section("Inputs (from the portfolio file)")
    c.scalar("cash_usd", "Cash at the start", "USD", None, co.cash_usd, "input")
    c.scalar("min_cash_usd", "Minimum cash balance", "USD", None, cons.min_cash_usd, "input")
    c.scalar("overhead_usd_per_year", "Corporate overhead", "USD/year", None,
             co.overhead_usd_per_year, "input")
    c.scalar("overhead_escalator_rate", "Overhead growth", "rate", None,
             co.overhead_escalator_rate, "input")
    c.scalar("tax_rate", "Tax shield on overhead", "rate", None, co.tax_rate, "input")
    c.scalar("overhead_terminal_multiple", "Overhead beyond the horizon: multiple of its "
             "last year", "multiple", None, co.overhead_terminal_multiple, "input")
    c.scalar("discount_rate", "Company discount rate", "rate", None, co.discount_rate, "input")
    c.scalar("shares_outstanding", "Shares outstanding", "shares", None,
             co.shares_outstanding, "input")
    if spec.financing.existing:
        c.section("Existing convertible notes: principal (converts if the share price "
                  f"{co.share_price_usd:g} USD is above its conversion price)")
        for k, note in enumerate(spec.financing.existing):
            verdict = "converts" if co.share_price_usd > note.conversion_price_usd else \
                "repaid"
            c.scalar(f"note.{k + 1}", f"{note.name}: {note.coupon_rate:.3%}, due "
                     f"{note.maturity_month}, {note.conversion_price_usd:g} USD/share, "
                     f"{verdict}", "USD", None, note.principal_usd, "value")
    c.section("From the optimiser and the notes' terms (Python; run again after changes)")
    sq_view = plan.status_quo
    c.scalar("new_funding_usd", f"New money raised at the start with the plan "
             f"({spec.financing.new.kind})", "USD", None, sol.funding_usd, "value")
    # "Before" is the company keeping every site mining, which needs new money too (the
    # overhead, fleet refreshes, the cash floor): the least that keeps its own floor.
    c.scalar("new_funding_before_usd", "New money keeping every site mining (the least its "
             "cash floor needs)" if sq_view.keeps_cash_floor else "New money keeping every "
             "site mining (no amount keeps its cash floor: none counted)", "USD", None,
             sq_view.new_funding_usd, "value")
    c.scalar("new_cost_per_usd", "Value lost per dollar raised", "USD/USD", None,
             fl.new_cost_per_usd, "value")
    c.scalar("new_shares_per_usd", "New shares per dollar raised", "shares/USD", None,
             fl.new_shares_per_usd, "value")
    c.scalar("notes_pv_usd", "Existing notes: PV of cash still to pay", "USD", None,
             -fl.stack_pv_usd, "value")
    c.scalar("notes_shares", "Existing notes: shares delivered on conversion (with or "
             "without the plan)", "shares", None, fl.stack_shares, "value")
    c.section("Monthly cash")
    c.values_row("index", "Month number (0-based)", "months", np.arange(n, dtype=float))
    sites_rows = []
    for site in chosen.site:
        key = f"site.{site}"
        c.formula_row(key, f"{_label(spec, site)}", "USD",
                      lambda t, site=site: f"'Sites'!{s.cell(f'cash.{site}', t, False)}",
                      v.site_cash_usd.loc[site].to_numpy(), kind="link")
        sites_rows.append(key)
    first, last = c.keys[sites_rows[0]], c.keys[sites_rows[-1]]
    total_sites = v.site_cash_usd.sum().to_numpy()
    c.formula_row("sites_cash_usd", "Sites' cash flow", "USD",
                  lambda t: f"SUM({_col_span(first, last, c.col(t))})", total_sites)
    c.formula_row("overhead_usd", "Overhead after its tax shield", "USD",
                  lambda t: f"-{c.cell('overhead_usd_per_year')}/12*(1+"
                            f"{c.cell('overhead_escalator_rate')})^({c.cell('index', t, False)}"
                            f"/12)*(1-{c.cell('tax_rate')})", fl.overhead_usd)
    c.values_row("existing_coupons_usd", "Existing notes: coupons", "USD",
                 fl.stack_coupons_usd)
    c.values_row("existing_principal_usd", "Existing notes: principal repaid", "USD",
                 fl.stack_principal_usd)
    c.values_row("new_per_usd", "New issuance: cash per dollar raised", "USD/USD",
                 fl.new_per_usd)
    c.formula_row("new_funding_cash_usd", "New money: proceeds less its service", "USD",
                  lambda t: f"{c.cell('new_funding_usd')}*{c.cell('new_per_usd', t, False)}",
                  v.new_funding_cash_usd)
    before_flows = total_sites + fl.fixed_usd
    c.formula_row("cash_flow_before_funding_usd", "Net cash flow before new money", "USD",
                  lambda t: "+".join(c.cell(k, t, False) for k in (
                      "sites_cash_usd", "overhead_usd", "existing_coupons_usd",
                      "existing_principal_usd")), before_flows)
    c.formula_row("balance_before_funding_usd", "Cash balance before new money", "USD",
                  lambda t: (f"{c.cell('cash_usd')}" if t == 0 else
                             c.cell('balance_before_funding_usd', t - 1, False)) + "+" +
                  c.cell("cash_flow_before_funding_usd", t, False),
                  v.balance_before_funding_usd, total=False)
    c.formula_row("funding_gap_usd", "Funding gap (minimum cash less the balance before new"
                  " money)", "USD", lambda t: f"MAX(0,{c.cell('min_cash_usd')}-"
                  f"{c.cell('balance_before_funding_usd', t, False)})", v.funding_gap_usd,
                  total=False)
    c.formula_row("balance_usd", "Cash balance", "USD",
                  lambda t: f"{c.cell('balance_before_funding_usd', t, False)}+SUM("
                  f"{xl_rowcol_to_cell(c.keys['new_funding_cash_usd'], FIRST_COL, True, True)}:"
                  f"{xl_rowcol_to_cell(c.keys['new_funding_cash_usd'], c.col(t), True, False)})",
                  v.balance_usd, total=False)
    c.formula_row("below_minimum", "Below the minimum? (1 = yes)", "flag",
                  lambda t: f"IF({c.cell('balance_usd', t, False)}<{c.cell('min_cash_usd')}-1,"
                  "1,0)", (v.balance_usd < cons.min_cash_usd - 1).astype(float))
    c.section("Company value")
    c.scalar("lowest_balance_usd", "Lowest cash balance", "USD",
             f"MIN({c.span('balance_usd')})", float(v.balance_usd.min()))
    c.scalar("peak_funding_gap_usd", "Peak funding gap", "USD",
             f"MAX({c.span('funding_gap_usd')})", float(v.funding_gap_usd.max()))
    ps, ps0 = v.per_share, plan.status_quo.per_share
    last_year = xl_rowcol_to_cell(c.keys["overhead_usd"], FIRST_COL + max(c.n - 12, 0),
                                  True, True) + ":" + xl_rowcol_to_cell(
        c.keys["overhead_usd"], FIRST_COL + c.n - 1, True, True)
    c.scalar("overhead_terminal_usd", "Overhead beyond the horizon, at its end", "USD",
             f"{c.cell('overhead_terminal_multiple')}*SUM({last_year})",
             overhead_terminal_usd(spec, plan.flows))
    c.scalar("overhead_pv_usd", "PV of the overhead (with what is beyond the horizon)", "USD",
             f"NPV((1+{c.cell('discount_rate')})^(1/12)-1,{c.span('overhead_usd')})"
             f"+{c.cell('overhead_terminal_usd')}/(1+{c.cell('discount_rate')})^({c.n}/12)",
             ps.overhead_pv_usd)
    npv_cells = ",".join(f"'Sites'!{s.cell(f'npv.{x}')}" for x in chosen.site)
    keep_cells = ",".join(f"'Sites'!{s.cell(f'npv_keep.{x}')}" for x in sq.site)
    c.scalar("sites_npv_usd", "Sites' NPV with the plan", "USD", f"SUM({npv_cells})",
             ps.sites_value_usd)

    def new_value(raised: str) -> str:
        """What the new money adds to the equity (company.per_share): its net proceeds
        for equity; minus its issuance cost for a note sold at fair value."""
        money, cost = c.cell(raised), c.cell("new_cost_per_usd")
        return (f"{money}*(1-{cost})" if spec.financing.new.kind == "equity" else
                f"-{money}*{cost}")

    c.scalar("equity_value_usd", "Equity value with the plan", "USD",
             f"{c.cell('sites_npv_usd')}+{c.cell('cash_usd')}+{c.cell('overhead_pv_usd')}+"
             f"{c.cell('notes_pv_usd')}+{new_value('new_funding_usd')}", ps.equity_value_usd)
    c.scalar("new_shares", "New shares with the plan", "shares",
             f"{c.cell('new_funding_usd')}*{c.cell('new_shares_per_usd')}", v.new_shares)
    c.scalar("diluted_shares", "Diluted shares with the plan", "shares",
             f"{c.cell('shares_outstanding')}+{c.cell('notes_shares')}+{c.cell('new_shares')}",
             ps.shares)
    c.scalar("value_per_share_usd", "Equity NPV per share with the plan (may be < 0)",
             "USD/share", f"{c.cell('equity_value_usd')}/{c.cell('diluted_shares')}",
             ps.value_per_share_usd)
    c.scalar("share_value_usd", "Value per share with the plan (limited liability: >= 0)",
             "USD/share", f"MAX(0,{c.cell('value_per_share_usd')})", ps.share_value_usd)
    c.scalar("sites_npv_keep_mining_usd", "Sites' NPV keeping every site mining", "USD",
             f"SUM({keep_cells})", ps0.sites_value_usd)
    c.scalar("equity_value_before_usd", "Equity value keeping every site mining (with its "
             "new money)", "USD",
             f"{c.cell('sites_npv_keep_mining_usd')}+{c.cell('cash_usd')}+"
             f"{c.cell('overhead_pv_usd')}+{c.cell('notes_pv_usd')}+"
             f"{new_value('new_funding_before_usd')}",
             ps0.equity_value_usd)
    c.scalar("new_shares_before", "New shares keeping every site mining", "shares",
             f"{c.cell('new_funding_before_usd')}*{c.cell('new_shares_per_usd')}",
             sq_view.new_shares)
    c.scalar("diluted_shares_before", "Diluted shares keeping every site mining", "shares",
             f"{c.cell('shares_outstanding')}+{c.cell('notes_shares')}+"
             f"{c.cell('new_shares_before')}", ps0.shares)
    c.scalar("value_per_share_before_usd", "Equity NPV per share keeping every site mining"
             " (may be < 0)", "USD/share", f"{c.cell('equity_value_before_usd')}/"
             f"{c.cell('diluted_shares_before')}", ps0.value_per_share_usd)
    c.scalar("share_value_before_usd", "Value per share keeping every site mining (limited "
             "liability: >= 0)", "USD/share", f"MAX(0,{c.cell('value_per_share_before_usd')})",
             ps0.share_value_usd)
    c.section("Dilution: the notes convert with or without the plan; the new shares differ")
    c.scalar("new_share_dilution", "New shares with the plan / its diluted shares", "share",
             f"{c.cell('new_shares')}/{c.cell('diluted_shares')}",
             v.new_shares / ps.shares)
    c.scalar("new_share_dilution_before", "New shares keeping every site mining / its "
             "diluted shares", "share", f"{c.cell('new_shares_before')}/"
             f"{c.cell('diluted_shares_before')}", sq_view.new_shares / ps0.shares)
    c.scalar("dilution_share", "All dilution with the plan (new shares and the notes' "
             "conversion / diluted shares)", "share",
             f"1-{c.cell('shares_outstanding')}/{c.cell('diluted_shares')}",
             1 - co.shares_outstanding / ps.shares)
    c.scalar("dilution_before_share", "All dilution keeping every site mining (new shares "
             "and the notes' conversion / diluted shares)", "share",
             f"1-{c.cell('shares_outstanding')}/{c.cell('diluted_shares_before')}",
             1 - co.shares_outstanding / ps0.shares)
    for key in ("value_per_share_usd", "value_per_share_before_usd", "share_value_usd",
                "share_value_before_usd", "equity_value_usd",
                "lowest_balance_usd", "peak_funding_gap_usd"):
        wb.define_name(f"company_{key}", f"=Company!{c.cell(key)}")

    # ---- Portfolio ----------------------------------------------------------------------
    _portfolio_sheet(wb, ws_p, st, plan, s, capex_rows, years, __version__)
    wb.close()
    if links:
        _forward_slash_links(path)


def _forward_slash_links(path: str) -> None:
    """Rewrite the workbook's external link targets with '/' (``sites/a.xlsx``).

    XlsxWriter stores a relative external link with Windows separators
    (``sites\\a.xlsx``), which a reader on Linux or macOS takes as one file name with a
    backslash in it; '/' is read by Excel on Windows too. The file is a temporary of
    :class:`~finmodel.outputs.Outputs`, so it is rewritten in place."""
    import io
    import re
    import zipfile

    def fix(xml: bytes) -> bytes:
        return re.sub(rb'<Relationship [^>]*TargetMode="External"[^>]*/>',
                      lambda m: re.sub(rb'Target="([^"]*)"', lambda t: b'Target="' +
                                       t.group(1).replace(b"\\", b"/") + b'"', m.group(0)),
                      xml)

    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.startswith("xl/worksheets/_rels/"):
                data = fix(data)
            dst.writestr(info, data)
    with open(path, "wb") as f:
        f.write(buf.getvalue())


#: Portfolio sheet column widths (A..H): the table prints one A4 landscape page wide at
#: 72 % (it was fitted to ~38 %, 9 pt text printing at 3.5 pt, because of a 60-wide Source
#: column and the charts beside the table); LibreOffice's columns are the wider, ~7.3 pt a
#: unit (measured: at 70 % the table ended 93 % of the way across the page), so at 72 %
#: it fills ~96 % and a font a little wider still fits.
_P_WIDTHS = (22, 22, 11, 13, 13, 13, 13, 36)
_P_SCALE = 72
#: Characters of Arial 9 per unit of column width, counted low so a wrapped cell's row is
#: never too short for its text.
_CHARS_PER_UNIT = 1.35
_LINE_PT = 12.0


def _lines(text: str, width: float) -> int:
    """Lines ``text`` wraps to in a column ``width`` units wide (words kept whole)."""
    per = max(int(width * _CHARS_PER_UNIT), 1)
    n, used = 1, 0
    for word in text.split():
        if used and used + 1 + len(word) > per:
            n, used = n + 1, len(word)
        else:
            used += (1 if used else 0) + len(word)
    return n + max(0, (max((len(w) for w in text.split()), default=0) - 1) // per)


def _wrapped(ws, r: int, c0: int, c1: int, text: str, fmt, widths=_P_WIDTHS) -> None:
    """``text`` in columns c0..c1 (merged when more than one), wrapped, its row tall enough."""
    if c1 > c0:
        ws.merge_range(r, c0, r, c1, text, fmt)
    else:
        ws.write_string(r, c0, text, fmt)
    n = _lines(text, sum(widths[c0:c1 + 1]))
    if n > 1:
        ws.set_row(r, _LINE_PT * n + 1)


def _portfolio_sheet(wb, ws, st, plan, s: _Sheet, capex_rows, years, version) -> None:
    spec = plan.portfolio.spec
    chosen, sol = plan.chosen, plan.solution
    src = plan.portfolio.source
    # Wrapped text sits at the bottom of its row, level with the numbers beside it.
    wrap = wb.add_format({**st.base, "text_wrap": True})
    wrap_unit = wb.add_format({**st.base, "text_wrap": True, "font_color": "#595959",
                               "indent": 1})
    centred = wb.add_format({**st.base, "align": "center"})
    section = wb.add_format({**st.base, "bold": True, "bottom": 1, "bg_color": "#D9E1F2",
                             "text_wrap": True, "valign": "top"})
    ws.write_string(0, 0, "Portfolio", st.title)
    ws.write_string(1, 0, f"{spec.company.name} | money in USD millions (USD m)", st.subtitle)
    stamp = [("finmodel version", version),
             ("Portfolio file", src.name if src else "(built in Python)"),
             ("Portfolio file SHA-256", src.sha256 if src else "-"),
             ("Run date", dt.date.today().isoformat()),
             ("Chosen by", SOLVER_NAMES.get(sol.solver, sol.solver) + ", " + (
                 "proven optimal" if sol.optimal else
                 f"NOT proven optimal: the time limit stopped it with the best plan found, "
                 f"proven within {sol.mip_gap:.3%} of the optimum") + "; shadow prices from "
              "the LP relaxation (HiGHS); values, not formulas: run again after changes")]
    for i, (k, val) in enumerate(stamp):
        ws.write_string(2 + i, 0, k, st.unit)
        _wrapped(ws, 2 + i, 1, 7, val, wrap)
    r = 8
    heads = ["Site", "Decision", "Start month", "NPV (USD m)", "Keep-mining NPV (USD m)",
             "Value of converting (USD m)", "Capex counted (USD m)", "Source"]
    _heads(ws, st, r, heads)
    top = r + 1
    usd = st.cell("USD")
    for k, site in enumerate(chosen.site):
        r += 1
        ws.write_string(r, 0, _label(spec, site), st.label)
        ws.write_string(r, 1, chosen.label(k), st.text)
        ws.write_string(r, 2, chosen.start_month[k] or "-", st.text)
        ws.write_formula(r, 3, f"='Sites'!{s.cell(f'npv.{site}')}", st.cell("USD", "link"),
                         float(chosen.npv_usd[k]))
        ws.write_formula(r, 4, f"='Sites'!{s.cell(f'npv_keep.{site}')}",
                         st.cell("USD", "link"),
                         float(chosen.npv_usd[k] - chosen.value_of_converting_usd[k]))
        ws.write_formula(r, 5, f"={xl_rowcol_to_cell(r, 3)}-{xl_rowcol_to_cell(r, 4)}", usd,
                         float(chosen.value_of_converting_usd[k]))
        ws.write_formula(r, 6, f"=SUM('Sites'!{s.span(f'capex.{site}', True)})", usd,
                         float(chosen.capex_usd[k].sum()))
        _wrapped(ws, r, 7, 7, spec.sites[site].source or "", wrap_unit)
    bottom = r
    r += 1
    ws.write_string(r, 0, "Total", st.cell("USD", bold=True))
    for j in (3, 4, 5, 6):
        col = xl_col_to_name(j)
        ws.write_formula(r, j, f"=SUM({col}{top + 1}:{col}{bottom + 1})",
                         st.cell("USD", bold=True), float(
                             [chosen.npv_usd.sum(), (chosen.npv_usd - chosen.value_of_converting_usd).sum(),
                              chosen.value_of_converting_usd.sum(), chosen.capex_usd.sum()][j - 3]))
    wb.define_name("plan_sites_npv_usd", f"=Portfolio!{xl_rowcol_to_cell(r, 3, True, True)}")

    # capex by year against the budget
    r += 2
    _wrapped(ws, r, 0, 7, "Capex by year against the budget (live over the Sites sheet)",
             section)
    r += 1
    _heads(ws, st, r, ["Year", "Budget (USD m)", "Capex of the plan (USD m)",
                       "Headroom (USD m)"])
    budget = spec.constraints.capex_budget_usd_by_year
    by_year = chosen.capex_by_year().sum()
    big = [y for y in years if by_year.get(y, 0) > 0.05 * max(by_year.max(), 1.0)]
    last = max([int(y) for y in budget] + big)
    shown = [y for y in years if y <= last]
    year_fmt = wb.add_format({**st.base, "num_format": "0", "align": "left"})
    ytop = r + 1
    for y in shown:
        r += 1
        ws.write_number(r, 0, y, year_fmt)
        j = years.index(y)
        col = xl_col_to_name(FIRST_COL + j)
        ws.write_formula(r, 2, f"=SUM('Sites'!{col}{capex_rows[0] + 1}:{col}{capex_rows[1] + 1})",
                         usd, float(by_year.get(y, 0.0)))
        if str(y) in budget:
            ws.write_number(r, 1, budget[str(y)], usd)
            ws.write_formula(r, 3, f"={xl_rowcol_to_cell(r, 1)}-{xl_rowcol_to_cell(r, 2)}", usd,
                             float(budget[str(y)] - by_year.get(y, 0.0)))
        else:
            ws.write_string(r, 1, "no limit", st.unit)
    ybottom = r

    # constraints
    r += 2
    _wrapped(ws, r, 0, 7, "Constraints: gain = exact MILP re-solve with $100M more room; LP "
             "dual = d value / d limit of the LP relaxation (USD per USD), which can fill a "
             "limit the integer plan cannot", section)
    r += 1
    _heads(ws, st, r, ["Constraint", "Limit (USD m)", "Used (USD m)", "Binding",
                       "LP dual (USD per USD)", "Gain per $100M (USD m)", "Lowest month",
                       "Reading"])
    for con in sol.constraints:
        r += 1
        ws.write_string(r, 0, con.name + (f" {con.year}" if con.year else ""), st.label)
        ws.write_number(r, 1, con.limit_usd, usd)
        ws.write_number(r, 2, con.used_usd, usd)
        ws.write_string(r, 3, "BINDING" if con.binding else "slack", centred)
        # + 0.0: an LP's -0.0 dual shows as 0, not -0.000
        ws.write_number(r, 4, (con.shadow_price if np.isfinite(con.shadow_price) else 0.0)
                        + 0.0, st.cell("USD/USD"))
        if con.milp_gain_per_100m_usd is not None:
            ws.write_number(r, 5, con.milp_gain_per_100m_usd, usd)
        ws.write_string(r, 6, con.month or "", centred)
        _wrapped(ws, r, 7, 7, con.reading, wrap)

    # greedy beside the optimiser
    r += 2
    _wrapped(ws, r, 0, 7, "Greedy ranking by NPV gained per extra capex dollar, beside the "
             "optimiser", section)
    r += 1
    _heads(ws, st, r, ["Site", "Optimiser", "Greedy"])
    g = plan.options.take(plan.greedy.choice)
    for k, site in enumerate(chosen.site):
        r += 1
        ws.write_string(r, 0, _label(spec, site), st.label)
        ws.write_string(r, 1, chosen.label(k), st.text)
        gk = int(np.flatnonzero(g.site == site)[0])
        ws.write_string(r, 2, g.label(gk), st.text)
    r += 1
    _wrapped(ws, r, 0, 0, "Value (sites' NPV less the cost of new money), USD m", wrap)
    ws.write_number(r, 1, sol.objective_usd, st.cell("USD", bold=True))
    ws.write_number(r, 2, plan.greedy.objective_usd, st.cell("USD", bold=True))
    wb.define_name("plan_value_usd", f"=Portfolio!{xl_rowcol_to_cell(r, 1, True, True)}")
    mc = plan.extra.get("monte_carlo")
    if mc:
        r += 2
        _wrapped(ws, r, 0, 7, f"Monte Carlo of the plan's cash: {mc['scenarios']} scenarios, "
                 f"seed {mc['seed']}, BTC price and hashrate paths shared by the sites",
                 section)
        expected = float(chosen.npv_usd.sum())
        rows = [
            ("prob_shortfall", "Probability of a funding shortfall", "share",
             "scenarios whose cash falls below the minimum in some month"),
            ("mean_shortfall_when_short_usd", "Mean shortfall when short", "USD",
             "largest shortfall of a scenario, averaged over those that fall short"),
            ("p95_shortfall_usd", "Shortfall, 95th percentile", "USD",
             "over all scenarios (0 when fewer than 5 % fall short)"),
            ("sites_npv_mean_usd", "Sites' NPV, mean over the paths", "USD",
             "mean of each scenario's NPV; not the NPV of the expected path "
             f"({expected / 1e6:,.1f}M, the plan's NPV above): NPV is not linear in the "
             "BTC price and hashrate"),
            ("sites_npv_p5_usd", "Sites' NPV, 5th percentile", "USD",
             "one scenario in twenty is worth less")]
        for key, text, unit, note in rows:
            r += 1
            ws.write_string(r, 0, text, st.label)
            ws.write_string(r, 1, shown_unit(unit), st.unit)
            ws.write_number(r, 2, mc[key], st.cell(unit))
            _wrapped(ws, r, 3, 7, note, wrap_unit)

    # Charts below the tables, one above the other, on a page of their own (beside the
    # table they made the printed sheet ~2.5 times wider than the table).
    r += 2
    chart_row = r
    ws.write_string(r, 0, "Charts", st.label_bold)
    r += 1
    chart = wb.add_chart({"type": "bar"})
    chart.add_series({"name": "NPV", "categories": ["Portfolio", top, 0, bottom, 0],
                      "values": ["Portfolio", top, 3, bottom, 3]})
    chart.add_series({"name": "Keep-mining NPV", "categories": ["Portfolio", top, 0, bottom, 0],
                      "values": ["Portfolio", top, 4, bottom, 4]})
    chart.set_title({"name": "NPV by site: the decision vs keep mining (USD m)",
                     "name_font": {"size": 11}})
    chart.set_x_axis({"num_format": '#,##0,,"M"'})
    chart.set_y_axis({"reverse": True, "label_position": "low"})
    chart.set_legend({"position": "bottom"})
    height = max(300, 100 + 36 * len(chosen.site))
    chart.set_size({"width": 760, "height": height})
    ws.insert_chart(r, 0, chart)
    r += height // 20 + 2
    chart = wb.add_chart({"type": "column"})
    chart.add_series({"name": "Capex of the plan", "categories": ["Portfolio", ytop, 0,
                                                                   ybottom, 0],
                      "values": ["Portfolio", ytop, 2, ybottom, 2]})
    line = wb.add_chart({"type": "line"})
    line.add_series({"name": "Budget", "categories": ["Portfolio", ytop, 0, ybottom, 0],
                     "values": ["Portfolio", ytop, 1, ybottom, 1],
                     "marker": {"type": "diamond", "size": 9, "fill": {"color": "#C00000"},
                                "border": {"color": "#C00000"}}, "line": {"none": True}})
    chart.combine(line)
    chart.set_title({"name": "Capex by year against the budget (USD m)",
                     "name_font": {"size": 11}})
    chart.set_y_axis({"num_format": '#,##0,,"M"'})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 760, "height": 300})
    ws.insert_chart(r, 0, chart)
    for j, w in enumerate(_P_WIDTHS):
        ws.set_column(j, j, w)
    _print_setup(ws, fit_width=False)
    ws.set_print_scale(_P_SCALE)
    ws.set_h_pagebreaks([chart_row])
    ws.activate()


def _heads(ws, st, r: int, heads: list[str]) -> None:
    """A header row; wrapped (two lines) when a header is wider than its column."""
    fmt_left = ws_fmt = None
    for j, h in enumerate(heads):
        fmt_left, ws_fmt = st.header_left, st.header_wrap
        ws.write_string(r, j, h, ws_fmt if j else fmt_left)
    if any(_lines(h, _P_WIDTHS[j]) > 1 for j, h in enumerate(heads)):
        ws.set_row(r, 2 * _LINE_PT + 1)


def _print_setup(ws, *, fit_width: bool, paper: int = 9) -> None:
    """Landscape (A4 = 9, A3 = 8), the sheet's name and the date in the header, the page in
    the footer (the name comes from &A, so no input text reaches the header's codes)."""
    ws.set_landscape()
    ws.set_paper(paper)
    ws.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
    ws.set_header("&L&A&Rfinmodel portfolio plan, &D")
    ws.set_footer("&CPage &P of &N")
    if fit_width:
        ws.fit_to_pages(1, 0)


def _status_quo(plan) -> np.ndarray:
    from finmodel.portfolio.plan import status_quo_choice

    return status_quo_choice(plan.options)


def _label(spec, site: str) -> str:
    return spec.sites[site].label or site


def _abs_row(r: int, n: int) -> str:
    return (f"{xl_rowcol_to_cell(r, FIRST_COL, True, True)}:"
            f"{xl_rowcol_to_cell(r, FIRST_COL + n - 1, True, True)}")


def _col_span(first: int, last: int, col: int) -> str:
    return f"{xl_rowcol_to_cell(first, col)}:{xl_rowcol_to_cell(last, col)}"
