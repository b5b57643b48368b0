"""Encodings for what a file format has no native place for.

- **The USID description of a dataset** (`describe` / `from_description`): formats without a
  native place for USID axes (TIFF, EDF, ...) store it beside the data as JSON, and the reader
  rebuilds the exact Dataset from it.
- **Metadata values HDF5 attributes cannot hold** (`encode_value` / `decode_value`): bytes, nested
  or mixed lists, dicts, None inside lists, text with NUL or lone surrogates, integers beyond 64
  bits. They are stored as one string, ``usidbridge-json:`` followed by tagged JSON (bytes as
  ``{"__bytes__": base64}``, complex as ``{"__complex__": [re, im]}``), and decoded on reading.
- `plain`: metadata as JSON-ready plain values, for formats that store metadata as text.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import ModelError
from .model import Dataset, Dimension

ENCODED_PREFIX = "usidbridge-json:"
MAX_ENCODED_CHARS = 64 * 2**20
MAX_ENCODED_DEPTH = 200


def plain(value: Any) -> Any:
    """Metadata as JSON-ready plain values: numpy scalars and arrays become Python numbers and lists."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def describe(dataset: Dataset, order: Sequence[int]) -> dict[str, Any]:
    """A JSON-ready description of a grid dataset whose data a file stores with its N-D axes in `order`.

    Formats without a native place for USID axes (TIFF, ...) store it beside the data, and
    `from_description` rebuilds the exact Dataset from it.
    """
    order, positions = list(order), len(dataset.pos.dims)
    return {
        "name": dataset.name,
        "quantity": dataset.quantity,
        "units": dataset.units,
        "axes": [{"name": dim.name, "units": dim.units, "values": dim.values.tolist()} for dim in (dataset.dims[axis] for axis in order)],
        "position": [order.index(axis) for axis in range(positions)],
        "spectroscopic": [order.index(axis) for axis in range(positions, len(order))],
        "metadata": plain(dataset.metadata),
    }


def from_description(array: Any, description: Mapping[str, Any], **attributes: Any) -> Dataset:
    """The Dataset of `describe`, from the stored array (its size-1 axes may be missing).

    ``position`` and ``spectroscopic`` list stored axis numbers (names may repeat across the two sides).
    A description that does not fit the array (edited, damaged) is a `ModelError` saying how.
    """
    try:
        dims = [Dimension(axis["name"], axis["units"], axis["values"]) for axis in description["axes"]]
        position, spectral = [int(axis) for axis in description["position"]], [int(axis) for axis in description["spectroscopic"]]
        quantity, units = str(description["quantity"]), str(description["units"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(f"the stored USID description is incomplete or malformed ({type(error).__name__}: {error})") from None
    sizes = [dim.size for dim in dims]
    if sorted(position + spectral) != list(range(len(dims))):
        raise ModelError(f"the stored USID description assigns axes {position} and {spectral}, not each of its {len(dims)} axes once")
    if math.prod(sizes) != math.prod(array.shape):
        raise ModelError(f"the stored USID description has axes of sizes {sizes}, which do not fit data of shape {tuple(array.shape)}")
    array = array.reshape(sizes).transpose(position + spectral)
    attributes.setdefault("metadata", description.get("metadata", {}))
    return Dataset.from_ndarray(
        array,
        [dims[axis] for axis in position],
        [dims[axis] for axis in spectral],
        name=str(description.get("name", "Raw_Data")),
        quantity=quantity,
        units=units,
        **attributes,
    )


def load_json(text: Any, what: str) -> Any:
    """JSON that a file carries (our descriptions and attributes), parsed defensively: size and nesting
    are bounded, and anything that is not sound JSON is a `ModelError` naming `what`."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str) or len(text) > MAX_ENCODED_CHARS:
        raise ModelError(f"{what} is not JSON text of at most {MAX_ENCODED_CHARS} characters")
    depth = max((len(match) for match in re.findall(r"[\[{]+", text)), default=0)
    if depth > MAX_ENCODED_DEPTH:
        raise ModelError(f"{what} nests deeper than {MAX_ENCODED_DEPTH} levels")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as error:
        raise ModelError(f"{what} is not valid JSON ({error})") from None


def _tagged(value: Any) -> Any:
    """A value as JSON-ready data that `_untagged` turns back into the same value."""
    if isinstance(value, Mapping):
        return {str(key): _tagged(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tagged(item) for item in value]
    if isinstance(value, np.ndarray):
        return _tagged(value.tolist())
    if isinstance(value, np.generic):
        return _tagged(value.item())
    if isinstance(value, (bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, complex):
        return {"__complex__": [value.real, value.imag]}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def _untagged(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        if set(value) == {"__complex__"}:
            return complex(*value["__complex__"])
        return {key: _untagged(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_untagged(item) for item in value]
    return value


def encode_value(value: Any) -> str:
    """`value` as one ASCII string that `decode_value` turns back into it."""
    return ENCODED_PREFIX + json.dumps(_tagged(value), ensure_ascii=True)


def is_encoded(text: str) -> bool:
    return text.startswith(ENCODED_PREFIX)


def decode_value(text: str) -> Any:
    """The value `encode_value` stored; text that is not a sound encoding comes back as it is."""
    try:
        return _untagged(load_json(text[len(ENCODED_PREFIX) :], "an encoded metadata value"))
    except (ModelError, TypeError, ValueError):
        return text
