"""Encodings of metadata for what a file format has no native place for (plain Python and numpy
values only: the model's own description, `usidbridge.model.describe`, is built on these).

- **Metadata as JSON** (`tagged` / `untagged`): what JSON has no type for is tagged, so that the
  value comes back the same: numpy arrays as ``{"__ndarray__": flat values, "dtype", "shape"}``,
  bytes as ``{"__bytes__": base64}``, complex as ``{"__complex__": [re, im]}``, NaN and infinities
  as ``{"__float__": "nan"}``. netCDF and the TIFF description store a dataset's metadata so.
- **Metadata values HDF5 attributes cannot hold** (`encode_value` / `decode_value`): bytes, nested
  or mixed lists, dicts, None inside lists, text with NUL or lone surrogates, integers beyond 64
  bits. They are stored as one string, ``usidbridge-json:`` followed by tagged JSON, and decoded on reading.
- `plain`: metadata as plain JSON values (arrays as lists), to compare or show, and for peers' attributes.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ModelError

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


ARRAY_KINDS = "biufcUS"  # numpy arrays of these kinds come back as arrays of their dtype; others as lists


def tagged(value: Any) -> Any:
    """A metadata value as strict JSON data that `untagged` turns back into the same value.

    Python scalars, text, None, lists and dicts are JSON's own (tuples become lists, numpy scalars
    Python ones, keys text); numpy arrays, bytes, complex numbers and non-finite floats are tagged.
    """
    if isinstance(value, Mapping):
        return {str(key): tagged(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [tagged(item) for item in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in ARRAY_KINDS:
            return tagged(value.tolist())
        return {"__ndarray__": tagged(value.ravel().tolist()), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return tagged(value.item())
    if isinstance(value, (bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, complex):
        return {"__complex__": [tagged(value.real), tagged(value.imag)]}
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": str(value)}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def untagged(value: Any) -> Any:
    """The value `tagged` made JSON of; a tag that does not decode stays as the dict it is."""
    if isinstance(value, list):
        return [untagged(item) for item in value]
    if not isinstance(value, dict):
        return value
    keys = set(value)
    try:
        if keys == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"], validate=True)
        if keys == {"__complex__"}:
            real, imaginary = (untagged(part) for part in value["__complex__"])
            return complex(real, imaginary)
        if keys == {"__float__"} and value["__float__"] in ("nan", "inf", "-inf"):
            return float(value["__float__"])
        if keys == {"__ndarray__", "dtype", "shape"}:
            dtype, items = np.dtype(value["dtype"]), value["__ndarray__"]
            if dtype.kind in ARRAY_KINDS and isinstance(items, list) and dtype.itemsize * len(items) <= MAX_ENCODED_CHARS:  # no more than the text held
                return np.array(untagged(items), dtype=dtype).reshape([int(size) for size in value["shape"]])
    except (TypeError, ValueError, binascii.Error):
        pass  # damaged or not ours: kept as the dict it is
    return {key: untagged(item) for key, item in value.items()}


def encode_value(value: Any) -> str:
    """`value` as one ASCII string that `decode_value` turns back into it."""
    return ENCODED_PREFIX + json.dumps(tagged(value), ensure_ascii=True)


def is_encoded(text: str) -> bool:
    return text.startswith(ENCODED_PREFIX)


def decode_value(text: str) -> Any:
    """The value `encode_value` stored; text that is not a sound encoding comes back as it is."""
    try:
        return untagged(load_json(text[len(ENCODED_PREFIX) :], "an encoded metadata value"))
    except (ModelError, TypeError, ValueError):
        return text
