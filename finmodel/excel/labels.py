"""What a reader sees instead of code names: labels of strategies, inputs and metrics,
the unit as printed and the number format of each unit.

Money lines are stored in US dollars (the model's unit) and shown in USD millions by the
number format, so a formula or a link still reads whole dollars.
"""

from __future__ import annotations

import re

#: Units shown under another name (the stored value is unchanged).
_SHOWN = {"USD": "USD m", "rate": "%", "share": "%", "flag": "1 = yes", "ratio": "ratio",
          "x": "x", "choice": "", "text": "", "YYYY-MM": "month"}
_USD_M = '#,##0.00,,;(#,##0.00,,);"-"'
_WHOLE = "#,##0;(#,##0);\"-\""
_TWO = '#,##0.00;(#,##0.00);"-"'


def shown_unit(unit: str) -> str:
    """The unit as printed beside a figure (USD lines are shown in millions)."""
    return _SHOWN.get(unit, unit)


def number_format(unit: str) -> str:
    """The Excel number format of a unit: USD m, %, x, years, calendar years without a
    thousands separator; never ``#,##0.##`` (Excel prints "15." for it)."""
    if unit == "USD":
        return _USD_M
    if unit in ("rate", "share"):
        return "0.0%"
    if unit == "x":
        return '0.00"x"'
    if unit == "date":
        return "mmm yy"
    if unit == "day":
        return "d mmm yy"
    if unit in ("YYYY-MM", "month"):
        return "mmm yyyy"
    if unit == "calendar_year":
        return "0"
    if unit in ("BTC", "BTC/block"):
        return '#,##0.000;(#,##0.000);"-"'
    if unit in ("flag", "generation", "epoch", "count"):
        return "0"
    if unit == "years":
        return "0.0"
    if unit in ("months", "minutes", "choice"):
        return "General"  # 2.5 or 12, never "12."
    if unit in ("USD/BTC", "USD/MW", "USD/MW-year", "USD/MW-month", "MWh", "PH/s-days",
                "blocks"):
        return _WHOLE
    if unit.startswith("USD/") or unit in ("J/TH", "EH/s", "MW", "ratio"):
        return _TWO
    return _WHOLE


_STRATEGY_KIND = {"mining": "Keep mining", "ai_hosting": "Convert to AI hosting",
                  "hybrid": "Hybrid"}


def strategy_label(name: str, spec=None) -> str:
    """A strategy as a reader names it: "Keep mining", "Convert to AI hosting",
    "Hybrid: 40 MW IT to AI"; a custom name is spelt out ("split_60" -> "Split 60")."""
    kind = getattr(spec, "kind", None)
    if kind == "hybrid" and getattr(spec, "ai_it_mw", None):
        base = f"Hybrid: {spec.ai_it_mw:g} MW IT to AI"
    elif kind in _STRATEGY_KIND:
        base = _STRATEGY_KIND[kind]
    else:
        base = humanise(name)
    if getattr(spec, "product", "lease") == "cloud":
        base += " (GPU cloud)"
    if name not in _STRATEGY_KIND and name != kind and kind is not None:
        base = f"{humanise(name)} ({base[0].lower()}{base[1:]})"
    return base


_SUFFIXES = re.compile(r"_(usd_per_[a-z_]+|usd|mw|mwh|eh_s|j_per_th|years|months|share)$")


def humanise(code: str) -> str:
    """A code name as words: "hosting.lease_rate_usd_per_kw_month" -> "Hosting: lease
    rate"; "ai_it_mw" -> "AI IT MW"."""
    parts = code.split(".")
    words = []
    for p in parts:
        p = _SUFFIXES.sub("", p) if p != parts[0] or len(parts) == 1 else p
        w = " ".join(_WORDS.get(x, x) for x in p.split("_"))
        words.append(w)
    text = ": ".join(words)
    return text[:1].upper() + text[1:]


_WORDS = {"ai": "AI", "btc": "BTC", "it": "IT", "mw": "MW", "ppa": "PPA", "npv": "NPV",
          "irr": "IRR", "moic": "MOIC", "usd": "USD", "gpu": "GPU", "pue": "PUE",
          "dscr": "DSCR", "capex": "capex", "opex": "opex", "th": "TH", "eh": "EH"}


def input_label(path: str, unit: str = "") -> str:
    """An input by its field path, in words with its unit: "Hosting: lease rate
    (USD/kW-month)"."""
    shown = shown_unit(unit)
    return f"{humanise(path)} ({shown})" if shown else humanise(path)


def strategy_labels(result) -> dict[str, str]:
    """Each strategy's label, by its name."""
    specs = result.assumptions.strategies
    return {s: strategy_label(s, specs.get(s)) for s in result.strategies}
