"""The Excel renderer: sheets, styles, defined names (never computes)."""

from finmodel.excel.workbook import export_excel

__all__ = ["export_excel"]
