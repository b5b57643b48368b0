"""sidpy datasets ↔ `Dataset`: the one mapping shared by the sidpy bridge and the NSID format.

sidpy is pycroscopy's in-memory model (SciFiReaders' readers return it; pyNSID stores it in HDF5
as NSID), so `to_sidpy` and `from_sidpy` serve both `usidbridge.converters.sidpy` and
`usidbridge.converters.nsid`.

Mapping between a ``sidpy.Dataset`` and the model:

==============================================  ================================================
sidpy                                           `Dataset`
==============================================  ================================================
N-D data (a dask array)                         the N-D form (lazy stays lazy)
dimension SPATIAL, RECIPROCAL, TEMPORAL,        position dim (``spectroscopic=`` names dims
UNKNOWN, POINT_CLOUD                            that are spectroscopic instead)
dimension SPECTRAL, CHANNEL                     spectroscopic dim
dimension name, units, values                   Dimension name, units, values
``quantity``, ``units``, ``title``              quantity, units, name (when a valid HDF5 name)
``metadata``, ``original_metadata``             ``metadata["sidpy"]``, every other key
==============================================  ================================================

Writing, position dims become SPATIAL and spectroscopic dims SPECTRAL, and ``data_type`` says what
the split is (IMAGE, SPECTRUM, SPECTRAL_IMAGE, IMAGE_STACK, ...). sidpy makes each dim an attribute
of the dataset and refuses empty units, so a name that is not a free identifier becomes ``axis_N``
and empty units "generic"; the exact names, units and sides travel in ``metadata["usidbridge"]``, and
`from_sidpy(to_sidpy(d))` gives `d` back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .model import Dataset, Dimension, from_labelled, unique_per_side
from .signals import plain_metadata

SPECTROSCOPIC_TYPES = ("SPECTRAL", "CHANNEL")
SIDPY_KEY = "sidpy"
EXACT_KEY = "usidbridge"
NO_UNITS = "generic"  # sidpy refuses empty units and quantities


def _sidpy_names(dims: Sequence[Dimension], reserved: set[str]) -> list[str]:
    """Names sidpy accepts: free identifiers, unique, not its own ``dim_N`` aliases; ``axis_N`` otherwise."""
    names: list[str] = []
    for axis, dim in enumerate(dims):
        name = dim.name
        if not name.isidentifier() or name in reserved or name in names or name.startswith(("_", "dim_", "axis_")):
            name = f"axis_{axis}"
        names.append(name)
    return names


def _data_type(dataset: Dataset) -> str:
    """The sidpy DataType of a dataset's split into position and spectroscopic dims."""
    positions = [dim for dim in dataset.pos.dims if dim.size > 1]
    spectral = [dim for dim in dataset.spec.dims if dim.size > 1]
    return {
        (0, 1): "SPECTRUM",
        (1, 0): "LINE_PLOT",
        (2, 0): "IMAGE",
        (1, 1): "LINE_PLOT_FAMILY",
        (2, 1): "SPECTRAL_IMAGE",
        (3, 0): "IMAGE_STACK",
        (2, 2): "IMAGE_4D",
    }.get((len(positions), len(spectral)), "UNKNOWN")


def to_sidpy(dataset: Dataset) -> Any:
    """The dataset as a ``sidpy.Dataset`` (N-D, one sidpy dimension per USID dim; lazy for h5py or dask data)."""
    import sidpy

    array = dataset.lazy_data.reshape(dataset.nd_shape)
    result = sidpy.Dataset.from_array(array, title=dataset.name)
    result.quantity, result.units = dataset.quantity or NO_UNITS, dataset.units or NO_UNITS
    result.data_type = _data_type(dataset)
    positions = len(dataset.pos.dims)
    names = _sidpy_names(dataset.dims, set(dir(result)))
    for axis, (dim, name) in enumerate(zip(dataset.dims, names)):
        kind = "spatial" if axis < positions else "spectral"
        result.set_dimension(axis, sidpy.Dimension(dim.values, name=name, quantity=dim.name or NO_UNITS, units=dim.units or NO_UNITS, dimension_type=kind))
    exact = {"names": [dim.name for dim in dataset.dims], "units": [dim.units for dim in dataset.dims], "positions": positions, "quantity": dataset.quantity, "data_units": dataset.units}
    result.metadata = {**dataset.metadata.get(SIDPY_KEY, {}), EXACT_KEY: exact}
    result.original_metadata = {key: value for key, value in dataset.metadata.items() if key != SIDPY_KEY}
    return result


def from_sidpy(sidpy_dataset: Any, spectroscopic: Sequence[str] | None = None, data: Any = None) -> Dataset:
    """One Dataset from a ``sidpy.Dataset``; see the module text for which dims are spectroscopic.

    `data`, when given, is used instead of sidpy's array (same axes): a file's own dataset, which
    sidpy's readers narrow (pyNSID reads complex128 as complex64).
    """
    import dask.array

    axes = [sidpy_dataset._axes[axis] for axis in range(sidpy_dataset.ndim)]
    sidpy_metadata = plain_metadata(dict(sidpy_dataset.metadata or {}))
    exact = sidpy_metadata.pop(EXACT_KEY, None)
    if not (isinstance(exact, dict) and len(exact.get("names", [])) == len(axes) == len(exact.get("units", []))):
        exact = None
    names = [_decoded(name) for name in exact["names"]] if exact else [_decoded(axis.name) or f"axis_{number}" for number, axis in enumerate(axes)]
    units = [_decoded(unit) for unit in exact["units"]] if exact else [_text(axis.units) for axis in axes]
    dims = [Dimension(name, unit, np.asarray(axis.values, dtype=np.float64)) for name, unit, axis in zip(names, units, axes)]
    if spectroscopic is not None:
        spectral = [number for number, dim in enumerate(dims) if dim.name in spectroscopic or axes[number].name in spectroscopic]
    elif exact:
        spectral = list(range(int(exact["positions"]), len(dims)))
    else:
        spectral = [number for number, axis in enumerate(axes) if axis.dimension_type.name in SPECTROSCOPIC_TYPES]
    if data is None:
        data = dask.array.Array(sidpy_dataset.dask, sidpy_dataset.name, sidpy_dataset.chunks, dtype=sidpy_dataset.dtype)
    metadata = plain_metadata(dict(sidpy_dataset.original_metadata or {}))
    metadata[SIDPY_KEY] = sidpy_metadata
    title = str(sidpy_dataset.title or "")
    name = title if title and "/" not in title and title not in (".", "") else "Raw_Data"
    quantity = _decoded(exact["quantity"]) if exact else _text(sidpy_dataset.quantity) or NO_UNITS
    data_units = _decoded(exact["data_units"]) if exact else _text(sidpy_dataset.units)
    return from_labelled(data, unique_per_side(dims, spectral), spectral, name=name, quantity=quantity, units=data_units, metadata=metadata)


def _decoded(value: Any) -> str:
    """Text as sidpy gives it back from a file: pyNSID returns names and lists of them as bytes."""
    return value.decode("utf-8", errors="replace") if isinstance(value, (bytes, bytearray)) else str(value)


def _text(value: Any) -> str:
    """sidpy's text, with its placeholder for "none" read as empty."""
    return "" if value in (None, NO_UNITS) else _decoded(value)
