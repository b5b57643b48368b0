"""HyperSpy signals: `to_hyperspy`, `from_hyperspy`, .hspy files, and a RosettaSciIO-style `file_reader`.

Mapping between HyperSpy and the model (HyperSpy's data array has the navigation axes first, like
the N-D form of a Dataset, so only the axis roles need mapping):

=============================================  ================================================
HyperSpy                                       `Dataset`
=============================================  ================================================
navigation axes                                position dims
signal axes                                    spectroscopic dims
a signal with no navigation: an image          position dims (Y, X) with USID's size-1
(Signal2D), or a spectrum (Signal1D)           placeholder; a spectroscopic dim, one position
uniform axis (offset, scale), non-uniform      Dimension values; values HyperSpy cannot hold
axis (``axis`` array)                          (not monotonic) are kept in ``metadata.usidbridge``
``metadata.General.title``                     ``quantity`` (also ``Signal.quantity``
                                               "quantity (units)" → units)
``original_metadata``                          ``metadata`` (HyperSpy's own ``metadata`` tree
                                               goes to ``metadata["hyperspy"]`` and back)
lazy signal (dask)                             lazy Dataset
compound dtype                                 one signal per field
=============================================  ================================================

``hs.load("file.h5", file_format=usidbridge.converters.hyperspy)`` loads h5USID (or any format
usidbridge reads) with the right navigation / signal split: `file_reader` returns the
RosettaSciIO dicts HyperSpy expects. HyperSpy alone cannot tell an h5USID ``.h5`` from its other
``.h5`` formats, and its own USID reader puts every dim in the signal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from usidbridge.api import read
from usidbridge.errors import UnreadableFileError, UnsupportedFeatureError
from usidbridge.hdf import compression_filter, has_hdf5_signature
from usidbridge.model import Ancillary, Dataset, Dimension, from_labelled
from usidbridge.registry import Format, Profile

QUANTITY_WITH_UNITS = re.compile(r"^(?P<quantity>.*) \((?P<units>[^()]*)\)$")
HYPERSPY_KEY = "hyperspy"
ENCODED_KEY = "usidbridge"


def _axis(dim: Dimension, navigate: bool, encoded: dict[str, list[float]]) -> dict[str, Any]:
    """A HyperSpy axis; values HyperSpy cannot hold (not monotonic) go to `encoded` and the axis counts 0, 1, 2, ..."""
    axis: dict[str, Any] = {"name": dim.name, "units": dim.units, "navigate": navigate, "size": dim.size}
    steps = np.diff(dim.values)
    if dim.is_uniform and np.array_equal(dim.offset + dim.scale * np.arange(dim.size), dim.values):
        axis.update(offset=dim.offset, scale=dim.scale)
    elif np.all(steps > 0) or np.all(steps < 0):
        axis["axis"] = dim.values
    else:
        axis.update(offset=0.0, scale=1.0)
        encoded[dim.name] = dim.values.tolist()
    return axis


def _fields(dataset: Dataset) -> list[Dataset]:
    """A compound dataset as one dataset per field (HyperSpy signals hold plain numbers)."""
    if not dataset.dtype.fields:
        return [dataset]
    return [
        Dataset(dataset.data[field], dataset.pos, dataset.spec, name=dataset.name, quantity=f"{dataset.quantity} {field}", units=dataset.units, metadata=dataset.metadata, source=dataset.source)
        for field in dataset.dtype.names
    ]


def signal_dict(dataset: Dataset, lazy: bool = False) -> dict[str, Any]:
    """The RosettaSciIO dictionary of one (non-compound) grid dataset."""
    if not dataset.is_grid:
        raise UnsupportedFeatureError(f"{dataset.quantity}: HyperSpy axes need a full grid; non-grid positions are kept by h5usid and netcdf")
    data = dataset.lazy_data if lazy else np.asarray(dataset.data)
    pos, spec = list(dataset.pos.dims), list(dataset.spec.dims)
    encoded: dict[str, list[float]] = {}
    if len(spec) == 1 and spec[0].size == 1:  # USID's placeholder: an image (or a line) over the positions
        data = data.reshape(dataset.pos.shape)
        signal_count = min(2, len(pos))
        axes = [_axis(dim, index < len(pos) - signal_count, encoded) for index, dim in enumerate(pos)]
    else:
        data = data.reshape(dataset.nd_shape)
        axes = [_axis(dim, True, encoded) for dim in pos] + [_axis(dim, False, encoded) for dim in spec]
    metadata = dict(dataset.metadata.get(HYPERSPY_KEY, {}))
    ours: dict[str, Any] = {"axis_values": encoded} if encoded else {}
    if len(spec) == 1 and spec[0].size == 1:
        ours["placeholder"] = {"name": spec[0].name, "units": spec[0].units, "value": float(spec[0].values[0])}
    if ours:
        metadata[ENCODED_KEY] = ours
    general = dict(metadata.get("General", {}))
    general["title"] = dataset.quantity
    if dataset.source:
        general.setdefault("original_filename", Path(dataset.source.split("::")[0]).name)
    signal = dict(metadata.get("Signal", {}))
    signal["quantity"] = f"{dataset.quantity} ({dataset.units})" if dataset.units else dataset.quantity
    metadata.update(General=general, Signal=signal)
    original = {key: value for key, value in dataset.metadata.items() if key != HYPERSPY_KEY}
    return {"data": data, "axes": axes, "metadata": metadata, "original_metadata": original}


def to_hyperspy(dataset: Dataset) -> Any:
    """The dataset as a HyperSpy signal (a list of signals, one per field, for compound data)."""
    from hyperspy.io import dict2signal

    signals = [dict2signal(signal_dict(part, lazy=part.is_lazy), lazy=part.is_lazy) for part in _fields(dataset)]
    return signals if dataset.dtype.fields else signals[0]


def _text(value: Any, fallback: str) -> str:
    return value if isinstance(value, str) and value and value != "<undefined>" else fallback


def from_hyperspy(signal: Any) -> Dataset:
    """One Dataset from a HyperSpy signal (lazy stays lazy)."""
    axes = list(signal.axes_manager._axes)
    dims = [Dimension(_text(axis.name, f"axis_{index}"), _text(axis.units, ""), np.asarray(axis.axis, dtype=np.float64)) for index, axis in enumerate(axes)]
    navigation = [index for index, axis in enumerate(axes) if axis.navigate]
    if navigation or signal.axes_manager.signal_dimension != 2:
        spectroscopic = [index for index in range(len(axes)) if index not in navigation]
    else:
        spectroscopic = []  # an image with no navigation: pixels are positions
    metadata = signal.metadata.as_dictionary()
    ours = metadata.pop(ENCODED_KEY, {})
    encoded = ours.get("axis_values", {})
    dims = [Dimension(dim.name, dim.units, encoded[dim.name]) if dim.name in encoded else dim for dim in dims]
    title = _text(metadata.get("General", {}).get("title"), "")
    signal_quantity = str(metadata.get("Signal", {}).get("quantity", ""))
    match = QUANTITY_WITH_UNITS.match(signal_quantity)
    if signal_quantity == title or not match or (title and match["quantity"] != title):
        match = None  # "A (B)" is the quantity itself, not "A" in units of "B"
    metadata.get("General", {}).pop("FileIO", None)
    attributes = {
        "quantity": title or (match["quantity"] if match else signal_quantity) or "Intensity",
        "units": match["units"] if match else "",
        "metadata": {**signal.original_metadata.as_dictionary(), HYPERSPY_KEY: metadata},
        "source": str(metadata.get("General", {}).get("original_filename", "")) or None,
    }
    data = signal.data
    if not dims:
        return Dataset.from_ndarray(np.reshape(data, 1), [Dimension("arb", "a.u.", [0.0])], **attributes)
    placeholder = ours.get("placeholder")
    if placeholder:  # written by `signal_dict` from an image or line: every axis is a position
        dataset = from_labelled(data, dims, [], **attributes)
        dataset.spec = Ancillary([Dimension(placeholder["name"], placeholder["units"], [placeholder["value"]])])
        return dataset
    return from_labelled(data, dims, spectroscopic, **attributes)


def file_reader(filename: str, lazy: bool = False, **kwds: Any) -> list[dict[str, Any]]:
    """RosettaSciIO-style reader: ``hs.load(path, file_format=usidbridge.converters.hyperspy)``."""
    return [signal_dict(part, lazy=lazy) for dataset in read(filename, lazy=lazy) for part in _fields(dataset)]


class HyperspyFormat(Format):
    name = "hyperspy"
    description = "HyperSpy .hspy files (signals with navigation / signal axes)"
    extensions = (".hspy",)
    dependency = "hyperspy"
    profile = Profile(compound="refuses", several_datasets="refuses", non_grid="refuses")
    write_options = {"compression": "HDF5 compression of the data: gzip (HyperSpy's default), lzf or none"}

    def sniff(self, head: bytes, path: Path) -> int:
        if not has_hdf5_signature(head):
            return 0
        import h5py

        with h5py.File(path, "r") as file:
            return 2 if str(file.attrs.get("file_format", "")).lower() == "hyperspy" else 0

    def read(self, path: Path, *, lazy: bool = False) -> list[Dataset]:
        import hyperspy.api as hs

        try:
            signals = hs.load(path, lazy=lazy, file_format="hspy")
        except Exception as error:
            raise UnreadableFileError(f"HyperSpy cannot read this file ({type(error).__name__}: {error})", path) from None
        return [from_hyperspy(signal) for signal in (signals if isinstance(signals, list) else [signals])]

    def write(self, datasets: Sequence[Dataset], path: Path, compression: str | None = "gzip") -> None:
        to_hyperspy(datasets[0]).save(path, overwrite=True, file_format="hspy", compression=compression_filter(compression))


FORMAT = HyperspyFormat()
