"""NSID: pycroscopy's HDF5 layout since 2021 (pyNSID; a sidpy dataset per N-D HDF5 dataset).

Written with pyNSID and read as pyNSID reads, through the hub's sidpy mapping (`usidbridge.sid`),
so NSID and the sidpy bridge agree on every dim. Reading is not pyNSID's own: it reads the whole
array into memory as float64 or complex64 (complex128 loses half its precision), and walks the
dimension scales with libhdf5's API, which aborts the process on a damaged reference (found by
fuzzing). Here the data stay the file's own (lazy when asked), and the scales are checked first.

Mapping between the file and the model:

=============================================  ================================================
NSID                                           `Dataset`
=============================================  ================================================
Main dataset (N-D, ``main_data_name``,         ``data`` (lazy: left in the file)
``data_type``, a dimension scale per axis)
scale with ``dimension_type`` SPATIAL,         position dim (name, units, values)
RECIPROCAL, TEMPORAL, UNKNOWN
scale with ``dimension_type`` SPECTRAL,        spectroscopic dim
CHANNEL
``quantity`` / ``units`` attributes            ``quantity`` / ``units``
``metadata`` / ``original_metadata`` groups    ``metadata["sidpy"]`` / every other key
=============================================  ================================================

Written layout: ``/Measurement_000/Channel_NNN/<name>/<name>``, as pyNSID writes it; position dims
SPATIAL, spectroscopic dims SPECTRAL, with the exact names and units in the sidpy metadata.
Non-grid positions have no N-D form and are refused (h5USID and netCDF keep them).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py

from usidbridge.attributes import string_attr
from usidbridge.errors import ModelError, UnreadableFileError
from usidbridge.hdf import attached_scales, damaged_hdf5, has_hdf5_signature, holds_marked, marked, open_hdf5, read_tree, read_whole, require_backed, sniffed, subgroups
from usidbridge.lazy import FileArray
from usidbridge.model import Dataset
from usidbridge.output import new_hdf5
from usidbridge.registry import Format, Profile
from usidbridge.sid import from_sidpy, to_sidpy

NSID_ATTRIBUTES = ("main_data_name", "data_type")  # pyNSID's marks of a Main dataset, with quantity and units


NSID_MAIN_MARKS = (*NSID_ATTRIBUTES, "DIMENSION_LIST")  # what pyNSID takes for a Main dataset: its marks, a dimension scale list


def nsid_mains(file: h5py.File) -> list[h5py.Dataset]:
    """The NSID Main datasets of `file`; raises `UnreadableFileError` for one whose attributes cannot be read."""
    found = marked(file, h5py.Dataset, NSID_MAIN_MARKS, every=True)
    damaged = [item for item in found if isinstance(item, str)]
    if damaged:
        raise UnreadableFileError(f"damaged NSID file: {damaged[0]} cannot be read", file.filename)
    return found


def _as_sidpy(main: h5py.Dataset, scales: list[list[h5py.Dataset]], labels: list[str], path: Path) -> Any:
    """The sidpy dataset pyNSID would make of `main`, without its data (given separately) and
    without libhdf5's dimension-scale API, which aborts the process on a damaged reference."""
    import dask.array
    import sidpy

    result = sidpy.Dataset.from_array(dask.array.zeros(main.shape, chunks=main.shape, dtype=main.dtype), title=string_attr(main, "title") or main.name)
    result.quantity, result.units = string_attr(main, "quantity") or "generic", string_attr(main, "units") or "generic"
    for axis, (scale,) in enumerate(scales):
        kind = string_attr(scale, "dimension_type") or "UNKNOWN"
        name = labels[axis] or string_attr(scale, "name") or f"dim_{axis}"
        result.set_dimension(axis, sidpy.Dimension(read_whole(scale, path), name=name, quantity=string_attr(scale, "quantity") or "generic", units=string_attr(scale, "units") or "generic", dimension_type=kind))
    for key, group in subgroups(main.parent):
        if key in ("metadata", "original_metadata"):
            setattr(result, key, read_tree(group))
    return result


def read_file(path: Path, lazy: bool = False) -> list[Dataset]:
    """Every NSID Main dataset of the file; see the module text."""
    file = open_hdf5(path)
    datasets = []
    try:
        with damaged_hdf5(path, "NSID"):
            for main in nsid_mains(file):
                scales, labels, problem = attached_scales(main)
                if problem or any(len(axis) != 1 for axis in scales):
                    raise UnreadableFileError(problem or f"{main.name}: NSID needs one dimension scale per axis, found {[len(axis) for axis in scales]}", path)
                data = require_backed(main, path)
                try:
                    dataset = from_sidpy(_as_sidpy(main, scales, labels, path), data=FileArray(data) if lazy else FileArray(data)[()])
                except (ValueError, TypeError, KeyError, AttributeError, Warning) as error:  # sidpy on a scale or attribute NSID does not define (it raises a bare Warning for an unknown type)
                    raise UnreadableFileError(f"{main.name}: not a valid NSID dataset ({type(error).__name__}: {error})", path) from None
                except ModelError as error:
                    raise UnreadableFileError(f"{main.name}: {error.message}", path) from None
                dataset.name, dataset.source = main.name.rsplit("/", 1)[-1], f"{path}::{main.name}"
                datasets.append(dataset)
    finally:
        if not lazy:
            file.close()
    if not datasets:
        raise UnreadableFileError("no NSID Main dataset (main_data_name, data_type and dimension scales)", path)
    return datasets


def write_file(datasets: Sequence[Dataset], path: Path) -> None:
    """One ``Channel_NNN`` group per dataset under ``Measurement_000``, written by pyNSID."""
    from pyNSID.io.hdf_io import write_nsid_dataset

    with new_hdf5(path) as file, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        measurement = file.create_group("Measurement_000")
        for number, dataset in enumerate(datasets):
            write_nsid_dataset(to_sidpy(dataset), measurement.create_group(f"Channel_{number:03d}"), main_data_name=dataset.name)


class NsidFormat(Format):
    name = "nsid"
    description = "NSID (pyNSID, pycroscopy's HDF5 layout of sidpy datasets)"
    extensions = (".hf5",)
    dependency = "pyNSID"
    extra = "nsid"
    profile = Profile(non_grid="refuses")

    def sniff(self, head: bytes, path: Path) -> int:
        if not has_hdf5_signature(head):
            return 0
        with sniffed(path) as file:
            return 2 if holds_marked(file, h5py.Dataset, NSID_MAIN_MARKS, every=True) else 0

    def read(self, path: Path, *, lazy: bool = False) -> list[Dataset]:
        return read_file(path, lazy=lazy)

    def write(self, datasets: Sequence[Dataset], path: Path) -> None:
        write_file(datasets, path)


FORMAT = NsidFormat()
