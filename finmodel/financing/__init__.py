"""Financing: convertible notes, project debt, equity cash flows."""
