"""usidbridge: USID/h5USID to and from NeXus, NetCDF/xarray, HyperSpy, EDF, SPEC and TIFF.

>>> import usidbridge as ub
>>> datasets = ub.read("scan.h5")            # list[Dataset], format sniffed from the content
>>> ub.write(datasets, "copy.h5")            # format from the extension, or format="h5usid"
>>> ub.validate("third_party.h5").ok         # USID rules, report.findings say what is wrong

Importing usidbridge imports numpy and h5py only; a format's library is imported when the format
is first used.
"""

__version__ = "0.1.0"

import importlib
from typing import Any

from .api import convert, read, write
from .model import Ancillary, Dataset, Dimension
from .registry import Format, Profile, formats, register
from .roundtrip import FidelityReport, roundtrip
from .rules import validate
from .visualize import visualize

__all__ = [
    "Ancillary",
    "Dataset",
    "Dimension",
    "FidelityReport",
    "Format",
    "Profile",
    "convert",
    "formats",
    "read",
    "register",
    "roundtrip",
    "validate",
    "visualize",
    "write",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """``usidbridge.converters`` on first use, so that ``import usidbridge`` stays light and
    ``usidbridge.converters.hyperspy`` works after it alone."""
    if name == "converters":
        return importlib.import_module(".converters", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
