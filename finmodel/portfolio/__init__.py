"""The portfolio layer: which sites to convert, to what and when, under a funding budget.

It sits above :func:`finmodel.run` (each site option is a run of the single-site model)
and never reaches into the engine or the business modules.
"""

from finmodel.portfolio.load import LoadedPortfolio, load_portfolio, parse_portfolio
from finmodel.portfolio.plan import Plan, plan_portfolio

__all__ = ["LoadedPortfolio", "Plan", "load_portfolio", "parse_portfolio", "plan_portfolio"]
