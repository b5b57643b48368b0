"""Format converters: one module per format, each declaring a `Format` for the registry."""

import importlib
import importlib.util
from typing import Any


def __getattr__(name: str) -> Any:
    """A converter module on first use (``usidbridge.converters.hyperspy``); importing the package imports none."""
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
