"""finmodel: keep mining Bitcoin, convert the megawatts to AI hosting, or split them.

The public API is small; everything else is imported by module path.
"""

from importlib.metadata import PackageNotFoundError, version

from finmodel.api import Result, run
from finmodel.errors import ExportError, FinmodelError, InputError, ModelError, SolverError
from finmodel.excel import export_excel
from finmodel.inputs import Assumptions, load_assumptions, with_values

try:
    __version__ = version("finmodel")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"

__all__ = [
    "Assumptions",
    "ExportError",
    "FinmodelError",
    "InputError",
    "ModelError",
    "Result",
    "SolverError",
    "__version__",
    "export_excel",
    "load_assumptions",
    "run",
    "with_values",
]
