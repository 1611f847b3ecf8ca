"""Inputs: the case schema (pydantic), loading and validation."""

from finmodel.inputs.load import load_assumptions, with_values
from finmodel.inputs.schema import Assumptions

__all__ = ["Assumptions", "load_assumptions", "with_values"]
