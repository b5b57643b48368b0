"""RosettaSciIO signal dictionaries ↔ `Dataset`: the one mapping shared by HyperSpy and every RosettaSciIO reader.

RosettaSciIO readers return, and HyperSpy builds its signals from, dicts of ``data``, ``axes``
(one dict per array axis, in array order: ``name``, ``units``, ``size``, ``navigate``, and
``offset`` / ``scale`` or an ``axis`` array), ``metadata`` and ``original_metadata``. Both the
HyperSpy converter and the RosettaSciIO gateway go through this module; neither needs a
HyperSpy session for it.

===============================================  ================================================
signal dict                                      `Dataset`
===============================================  ================================================
navigation axes                                  position dims (array order: slowest first)
signal axes                                      spectroscopic dims
no navigation and a 2-D signal: an image         position dims (pixels are positions, as pyUSID
                                                 stores images) and USID's size-1 placeholder
no navigation and a 1-D or 3-D+ signal           spectroscopic dims at one placeholder position
``offset`` + ``scale``, or an ``axis`` array     Dimension values (negative scales and
                                                 non-uniform axes are kept as they are)
empty or undefined axis name, units              ``axis_N``, no units
``metadata.Signal.quantity``,                    ``quantity`` and ``units``: "X (U)" gives X and U,
else ``metadata.General.title``                  "X" gives X; without it, the title (written back
                                                 only when the tree does not already say them)
``original_metadata``                            ``metadata`` (HyperSpy's own ``metadata`` tree
                                                 goes to ``metadata["hyperspy"]`` and back)
RGB(A) fields ``R``, ``G``, ``B`` (``A``)        USID's colour fields red, green, blue (alpha)
===============================================  ================================================

Writing, a dim becomes a uniform axis when its values are ``offset + scale·i`` to within
floating-point rounding (`Dimension.is_uniform`), so HyperSpy's ``rebin`` and ``fft`` work; the
exact values, and values HyperSpy cannot hold at all (not monotonic), travel in
``metadata.usidbridge.axis_values`` (a list by axis number) and come back from there. So do a
dim name or units HyperSpy reads back as undefined (``_None_``, ``<undefined>``), in
``metadata.usidbridge.axis_labels``, and a quantity and units the title and "X (U)" cannot tell
apart (blank, or units in parentheses), in
``metadata.usidbridge.quantity``; a quantity "." or "..", which a .hspy file names a group after,
gets the title "_." or "_..".
"""

from __future__ import annotations

import datetime
import numbers
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError, UnsupportedFeatureError, silenced
from .images import RGB_FIELDS, RGBA_FIELDS
from .model import Ancillary, Dataset, Dimension, from_labelled, placeholder_dimension, unique_per_side

QUANTITY_WITH_UNITS = re.compile(r"^(?P<quantity>.*) \((?P<units>[^()]*)\)$")
HYPERSPY_KEY = "hyperspy"
FILE_IO_ENTRY = re.compile(r"(Number_)?\d+")  # the keys of HyperSpy's General.FileIO records
ENCODED_KEY = "usidbridge"
UNDEFINED = ("", "<undefined>", None)
CHANGED_LABELS = frozenset({"<undefined>", "_None_"})  # axis names and units HyperSpy reads back as undefined, or None
RGB_NAMES = {"R": "red", "G": "green", "B": "blue", "A": "alpha"}


def uniform_form(dim: Dimension) -> tuple[float, float, bool] | None:
    """``(offset, scale, exact)`` when the dim is uniform to within rounding, else None.

    `exact` says whether ``offset + scale * arange(size)`` gives the stored values bitwise.
    """
    values, size = dim.values, dim.size
    if size == 1:
        return float(values[0]), 1.0, True
    if not dim.is_uniform:
        return None
    steps = np.arange(size)
    endpoints = float(values[-1] - values[0]) / (size - 1)
    for scale in (dim.scale, endpoints):
        if (values[0] + scale * steps).tobytes() == values.tobytes():  # bitwise: -0.0 is not 0.0
            return float(values[0]), scale, True
    return float(values[0]), endpoints, False


def _axis(dim: Dimension, navigate: bool, encoded: list[list[float]]) -> dict[str, Any]:
    """A RosettaSciIO axis dict; exact values that the axis does not reproduce go to `encoded` (one entry per axis, None when exact)."""
    axis: dict[str, Any] = {"name": dim.name, "units": dim.units, "navigate": navigate, "size": dim.size}
    uniform = uniform_form(dim)
    steps = np.diff(dim.values)
    if uniform is not None:
        offset, scale, exact = uniform
        axis.update(offset=offset, scale=scale)
        encoded.append(None if exact else dim.values.tolist())
    elif np.all(steps > 0) or np.all(steps < 0):
        axis["axis"] = dim.values
        encoded.append(None)
    else:
        axis.update(offset=0.0, scale=1.0)
        encoded.append(dim.values.tolist())
    return axis


def is_image(dataset: Dataset) -> bool:
    """True for an image or a line over the positions: the spectroscopic side is USID's size-1 placeholder."""
    return dataset.spec.is_grid and len(dataset.spec.dims) == 1 and dataset.spec.dims[0].size == 1


def signal_dict(dataset: Dataset, lazy: bool = False) -> dict[str, Any]:
    """The RosettaSciIO dictionary of one (non-compound) grid dataset."""
    if not dataset.is_grid:
        raise UnsupportedFeatureError(f"{dataset.quantity}: HyperSpy axes need a full grid; non-grid positions are kept by h5usid and netcdf")
    data = dataset.lazy_nd(map_file=True) if lazy else np.asarray(dataset.data).reshape(dataset.nd_shape)
    pos, spec = list(dataset.pos.dims), list(dataset.spec.dims)
    encoded: list[list[float] | None] = []  # by axis number: dim names may be anything, HyperSpy's metadata keys may not
    if is_image(dataset):
        data = data.reshape(dataset.pos.shape)
        signal_count = min(2, len(pos))
        axes = [_axis(dim, index < len(pos) - signal_count, encoded) for index, dim in enumerate(pos)]
    else:
        axes = [_axis(dim, True, encoded) for dim in pos] + [_axis(dim, False, encoded) for dim in spec]
    metadata = dict(dataset.metadata.get(HYPERSPY_KEY, {}))
    general, signal = dict(metadata.get("General", {})), dict(metadata.get("Signal", {}))
    if _quantity(metadata) != (dataset.quantity, dataset.units) or general.get("title") in (".", ".."):  # else the reader's title stays
        general["title"] = dataset.quantity if dataset.quantity not in (".", "..") else f"_{dataset.quantity}"  # .hspy names a group after it
        signal["quantity"] = f"{dataset.quantity} ({dataset.units})" if dataset.units else dataset.quantity
    file_io = general.get("FileIO")
    if isinstance(file_io, Mapping) and not all(FILE_IO_ENTRY.fullmatch(str(key)) for key in file_io):
        general["FileIO"] = {"0": dict(file_io)}  # HyperSpy numbers its load and save records, and fails on any other key
    if dataset.source:
        general.setdefault("original_filename", Path(dataset.source.split("::")[0]).name)
    metadata.update(General=general, Signal=signal)
    ours: dict[str, Any] = {"axis_values": encoded} if any(values is not None for values in encoded) else {}
    labels = [[dim.name, dim.units] if not {dim.name, dim.units}.isdisjoint(CHANGED_LABELS) else None for dim in (pos if is_image(dataset) else pos + spec)]
    if any(labels):
        ours["axis_labels"] = labels
    if is_image(dataset) and (len(pos) != 2 or spec[0] != placeholder_dimension()):  # else read back as an image anyway
        ours["placeholder"] = {"name": spec[0].name, "units": spec[0].units, "value": float(spec[0].values[0])}
    if _quantity(metadata) != (dataset.quantity, dataset.units):  # the title and "X (U)" do not tell them apart
        ours["quantity"] = [dataset.quantity, dataset.units]
    if ours:
        metadata[ENCODED_KEY] = ours
    original = {key: value for key, value in dataset.metadata.items() if key != HYPERSPY_KEY}
    return {"data": data, "axes": axes, "metadata": metadata, "original_metadata": original}


def _text(value: Any, fallback: str) -> str:
    return value if isinstance(value, str) and value not in UNDEFINED else fallback


def _dimension(axis: Mapping[str, Any], index: int, size: int) -> Dimension:
    """The Dimension of one axis dict: its ``axis`` array, else offset + scale · i."""
    name, units = _text(axis.get("name"), f"axis_{index}"), _text(axis.get("units"), "")
    if axis.get("axis") is not None:
        return Dimension(name, units, np.asarray(axis["axis"], dtype=np.float64))
    offset, scale = (_number(axis.get(key, default), f"axis {name!r}: {key}") for key, default in (("offset", 0.0), ("scale", 1.0)))
    return Dimension.uniform(name, units, size, offset=offset, scale=scale)


def _number(value: Any, what: str) -> float:
    """One real number (readers give numpy scalars, fractions, TIFF rationals; a damaged file an array or text)."""
    if isinstance(value, numbers.Real):
        return float(value)
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "biuf":
        raise ModelError(f"{what} must be one number, found {str(value)[:60]!r}")
    return float(array.reshape(()))


def _quantity(metadata: Mapping[str, Any]) -> tuple[str, str]:
    """Quantity and units from ``Signal.quantity`` ("X-rays (Counts)", or "Intensity" without units), else ``General.title``."""
    title = _text(metadata.get("General", {}).get("title"), "")
    signal_quantity = _text(metadata.get("Signal", {}).get("quantity"), "")
    match = QUANTITY_WITH_UNITS.match(signal_quantity)
    if match and signal_quantity != title and match["quantity"].strip():
        return match["quantity"], match["units"]
    return signal_quantity or title or "Intensity", ""


def plain_metadata(value: Any) -> Any:
    """A metadata tree as plain values HDF5 and JSON can take: dicts, lists, numbers, strings, bytes, arrays."""
    if hasattr(value, "as_dictionary"):
        value = value.as_dictionary()
    if hasattr(value, "compute") and hasattr(value, "dtype"):  # a lazy signal's metadata arrays are dask: small, read them
        value = np.asarray(value)
    if isinstance(value, Mapping):
        return {str(key): plain_metadata(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_metadata(item) for item in value]
    if isinstance(value, np.ndarray):
        return value if value.dtype.kind in "biufc" else plain_metadata(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, bytes, bool, int, float, complex)) or value is None:
        return value
    if isinstance(value, (datetime.date, datetime.time, datetime.datetime)):
        return value.isoformat()
    return str(value)


def _rgb(data: Any) -> Any:
    """RosettaSciIO's colour fields R, G, B(, A) renamed to USID's red, green, blue(, alpha); a view."""
    dtype = np.dtype(data.dtype)
    if not dtype.names or tuple(RGB_NAMES.get(name, name) for name in dtype.names) not in (RGB_FIELDS, RGBA_FIELDS):
        return data
    renamed = np.dtype({"names": [RGB_NAMES[name] for name in dtype.names], "formats": [dtype.fields[name][0] for name in dtype.names], "offsets": [dtype.fields[name][1] for name in dtype.names], "itemsize": dtype.itemsize})
    return data.view(renamed) if isinstance(data, np.ndarray) else data.map_blocks(lambda block: block.view(renamed), dtype=renamed)


def dataset_from_signal(signal: Mapping[str, Any], source: str | None = None) -> Dataset:
    """One Dataset from a signal dict (lazy data stays lazy); see the module text for the mapping."""
    data = _rgb(signal["data"])
    shape = tuple(data.shape)
    axes = list(signal.get("axes") or [])
    if len(axes) != len(shape):
        axes = [{"size": size, "navigate": False} for size in shape]
    dims = [_dimension(axis, index, size) for index, (axis, size) in enumerate(zip(axes, shape))]
    metadata = plain_metadata(signal.get("metadata") or {})
    ours = metadata.pop(ENCODED_KEY, {})
    exact_values, exact_labels = ours.get("axis_values"), ours.get("axis_labels")
    if isinstance(exact_values, list) and len(exact_values) == len(dims):
        for index, (dim, exact) in enumerate(zip(dims, exact_values)):
            if isinstance(exact, list) and len(exact) == dim.size:
                dims[index] = Dimension(dim.name, dim.units, exact)
    if isinstance(exact_labels, list) and len(exact_labels) == len(dims):
        for index, (dim, labels) in enumerate(zip(dims, exact_labels)):
            if isinstance(labels, list) and len(labels) == 2 and all(isinstance(text, str) for text in labels):
                dims[index] = Dimension(labels[0], labels[1], dim.values)
    navigation = [index for index, axis in enumerate(axes) if axis.get("navigate")]
    placeholder = ours.get("placeholder")  # written by `signal_dict` from an image or a line: every axis is a position
    image = placeholder is not None or (not navigation and len(dims) == 2)
    spectroscopic = [] if image else [index for index in range(len(dims)) if index not in navigation]
    dims = unique_per_side(dims, spectroscopic)
    exact = ours.get("quantity")
    quantity, units = exact if isinstance(exact, list) and len(exact) == 2 and all(isinstance(text, str) for text in exact) else _quantity(metadata)
    metadata.get("General", {}).pop("FileIO", None)
    attributes = {"quantity": quantity, "units": units, "metadata": {**plain_metadata(signal.get("original_metadata") or {}), HYPERSPY_KEY: metadata}, "source": source}
    if not dims:
        return Dataset.from_ndarray(np.reshape(data, 1), [placeholder_dimension()], **attributes)
    dataset = from_labelled(data, dims, spectroscopic, **attributes)
    if placeholder:
        dataset.spec = Ancillary([Dimension(placeholder["name"], placeholder["units"], [placeholder["value"]])])
    return dataset


def as_hyperspy_loads(signal: Mapping[str, Any]) -> dict[str, Any]:
    """A RosettaSciIO reader's signal dict as ``hs.load`` turns it into a signal: HyperSpy builds the
    signal (its class may add metadata), runs the reader's ``post_process`` steps (``to_signal1D``,
    ``squeeze``, ``transpose``, ``change_dtype``, ...: HyperSpy calls, so HyperSpy does them) and
    copies ``original_metadata`` into ``metadata`` along the reader's ``mapping`` (beam energy,
    angles, dwell time, ``Signal.quantity``). Lazy (dask) data stays lazy. HyperSpy's log lines and
    warnings ("signal_type 'EELS' not understood") are kept out of the user's output."""
    import hyperspy.api  # noqa: F401  imported before its logger is silenced: importing it sets that logger's level
    from hyperspy.io import dict2signal

    signal = dict(signal)
    signal["metadata"] = {**signal.get("metadata", {})}
    signal["metadata"]["Signal"] = dict(signal["metadata"].get("Signal", {}))  # as hs.load's load_with_reader
    with silenced("hyperspy"):
        return hyperspy_dict(dict2signal(signal, lazy=hasattr(signal["data"], "compute")))


def hyperspy_dict(signal: Any) -> dict[str, Any]:
    """The signal dict of a HyperSpy signal: its data (lazy stays lazy), axes in array order, uniform
    ones by offset and scale, ``metadata`` without HyperSpy's run-time state (``_HyperSpy``) and ``original_metadata``."""
    axes = []
    for axis in signal.axes_manager._axes:
        entry = {"name": axis.name, "units": axis.units, "navigate": axis.navigate, "size": axis.size}
        entry.update({"offset": axis.offset, "scale": axis.scale} if axis.is_uniform else {"axis": axis.axis})
        axes.append(entry)
    metadata = signal.metadata.as_dictionary()
    metadata.pop("_HyperSpy", None)
    return {"data": signal.data, "axes": axes, "metadata": metadata, "original_metadata": signal.original_metadata.as_dictionary()}


def fields(dataset: Dataset) -> list[Dataset]:
    """A compound dataset as one dataset per field (HyperSpy signals hold plain numbers)."""
    if not dataset.dtype.fields:
        return [dataset]
    return [
        Dataset(dataset.data[field], dataset.pos, dataset.spec, name=dataset.name, quantity=f"{dataset.quantity} {field}", units=dataset.units, metadata=dataset.metadata, source=dataset.source)
        for field in dataset.dtype.names
    ]


def signal_dicts(datasets: Sequence[Dataset], lazy: bool = False) -> list[dict[str, Any]]:
    """The signal dicts of several datasets, one per field of a compound dataset."""
    return [signal_dict(part, lazy=lazy) for dataset in datasets for part in fields(dataset)]
