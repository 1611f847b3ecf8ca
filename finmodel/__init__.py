"""finmodel: keep mining Bitcoin, convert the megawatts to AI hosting, or split them.

The public API is small; everything else is imported by module path.
"""

import gc as _gc
from importlib.metadata import PackageNotFoundError, version

# Importing creates ~70,000 objects that live as long as the process (numpy, pandas,
# pydantic's schemas) and no garbage: the ~190 collections they would trigger free nothing
# and cost ~0.05-0.08 s of `finmodel run`. The collector is back as it was afterwards.
# Re-enabled as they are, the young objects would all be scanned at the next allocation
# (one collection, 0.015-0.023 s); freeze + unfreeze moves every tracked object to the
# oldest generation without scanning it (as if it had survived two collections: a cycle
# among them is still freed, by the next full collection).
_collecting = _gc.isenabled()
_gc.disable()
try:
    from finmodel.api import Result, run
    from finmodel.errors import (ExportError, FinmodelError, InputError, ModelError,
                                 SolverError)
    from finmodel.excel import export_excel
    from finmodel.inputs import Assumptions, load_assumptions, with_values
finally:
    if _gc.get_freeze_count() == 0:  # a frozen caller's objects stay frozen
        _gc.freeze()
        _gc.unfreeze()
    if _collecting:
        _gc.enable()

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
