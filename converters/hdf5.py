"""Plain HDF5: any numeric dataset of any HDF5 file that is neither h5USID nor NeXus, read-only.

Mapping between the file and the model (one Dataset per numeric dataset; pick one with
``--dataset PATH``, a name, a quantity or a glob):

=============================================  ================================================
HDF5                                           `Dataset`
=============================================  ================================================
a numeric, complex or compound dataset         N-D data (an h5py dataset when lazy)
(dimension scales themselves are skipped)
dimension scale attached to axis i             dim i: the scale's values, its dimension label
(``H5DSattach_scale``)                         (else the scale's own name) and ``units`` attr
axis without a scale                           dim ``arb_i`` (its dimension label when set),
                                               values 0, 1, 2, ..., units a.u.
``spectroscopic=`` (names or a count of        which dims are spectroscopic. Without it: a 1-D
trailing axes)                                 dataset is a spectrum (spectroscopic), a 2-D one
                                               an image (positions), and of 3 or more dims the
                                               last is spectroscopic (a spectrum per pixel)
``long_name`` / ``quantity`` and ``units``     quantity (else the dataset's name) and units
attributes
every attribute, and the path                  ``metadata["hdf5"]``
=============================================  ================================================
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py

from usidbridge.attributes import read_attrs, string_attr
from usidbridge.errors import NotUSIDError, UnreadableFileError
from usidbridge.hdf import attached_scales, damaged_hdf5, has_hdf5_signature, is_dimension_scale, open_hdf5, path_of, read_whole, require_backed, unbacked_size
from usidbridge.layout import check_dtype
from usidbridge.lazy import FileArray
from usidbridge.model import Dataset, Dimension, from_labelled, unique_per_side
from usidbridge.registry import Format, Profile

PLACEHOLDER_UNITS = "a.u."


def convertible(obj: Any) -> bool:
    """True for a dataset the model can hold: numeric, complex or compound of those, non-empty, not a scale."""
    if not isinstance(obj, h5py.Dataset) or obj.ndim < 1 or obj.size == 0 or is_dimension_scale(obj):
        return False
    try:
        dtype = obj.dtype
    except ValueError:  # an HDF5 datatype h5py cannot map to numpy (a damaged float layout)
        return False
    return check_dtype(dtype) is None


def convertible_datasets(file: h5py.File) -> list[tuple[str, h5py.Dataset]]:
    """Every convertible dataset of the file with its path, each once, in the order h5py visits them (hard links only)."""
    found: list[tuple[str, h5py.Dataset]] = []
    file.visititems(lambda name, obj: found.append((f"/{name}", obj)) if convertible(obj) else None)
    return found


def _dims(dataset: h5py.Dataset, path: str) -> list[Dimension]:
    """One dim per axis: the first attached dimension scale that fits, else an index dim."""
    dims = []
    scales, labels, _problem = attached_scales(dataset)
    for axis, size in enumerate(dataset.shape):
        label = labels[axis]
        dim = Dimension(label or f"arb_{axis}", PLACEHOLDER_UNITS, size)
        for scale in scales[axis]:
            if scale.ndim == 1 and scale.shape[0] == size and scale.dtype.kind in "iuf":
                name = label or string_attr(scale, "long_name") or (path_of(scale) or "scale").rsplit("/", 1)[-1]
                dim = Dimension(name, string_attr(scale, "units") or "", read_whole(scale, path))
                break
        dims.append(dim)
    return dims


def _spectroscopic(dims: list[Dimension], override: Sequence[str] | int | None) -> list[int]:
    count = len(dims)
    if isinstance(override, int):
        return list(range(count - override, count)) if override else []
    if override is not None:
        return [axis for axis, dim in enumerate(dims) if dim.name in override]
    if count == 1:
        return [0]
    return [count - 1] if count >= 3 else []


def read_dataset(path: str, dataset: h5py.Dataset, lazy: bool, spectroscopic: Sequence[str] | int | None = None) -> Dataset:
    """One HDF5 dataset, found at `path` in its file, as a Dataset (left in the file when `lazy`)."""
    problem = unbacked_size(dataset)  # before the dims: an index dim of 10^12 values would fill the memory
    if problem:
        raise UnreadableFileError(problem, dataset.file.filename)
    dims = _dims(dataset, dataset.file.filename)
    spectral = _spectroscopic(dims, spectroscopic)
    name = path.rsplit("/", 1)[-1]
    attributes = {
        "name": name,
        "quantity": string_attr(dataset, "long_name") or string_attr(dataset, "quantity") or name,
        "units": string_attr(dataset, "units") or "",
        "metadata": {"hdf5": {"path": path, "attributes": read_attrs(dataset, skip=frozenset({"DIMENSION_LIST", "REFERENCE_LIST"}))}},
        "source": f"{dataset.file.filename}::{path}",
    }
    data = require_backed(dataset, dataset.file.filename)  # last: attributes cannot be read through the reopened handle
    return from_labelled(FileArray(data) if lazy else FileArray(data)[()], unique_per_side(dims, spectral), spectral, **attributes)


class Hdf5Format(Format):
    name = "hdf5"
    description = "any numeric dataset of any HDF5 file, dims from attached dimension scales"
    profile = Profile()
    read_options = {"spectroscopic": "which dims are spectroscopic: a list of dim names, or a count of trailing dims"}

    def sniff(self, head: bytes, path: Path) -> int:
        return 1 if has_hdf5_signature(head) else 0

    def read(self, path: Path, *, lazy: bool = False, spectroscopic: Sequence[str] | int | None = None) -> list[Dataset]:
        file = open_hdf5(path)
        datasets, problems = [], []
        try:
            with damaged_hdf5(path):
                for name, dataset in convertible_datasets(file):
                    try:
                        datasets.append(read_dataset(name, dataset, lazy, spectroscopic))
                    except UnreadableFileError as error:  # one unreadable dataset does not hide the others
                        problems.append(error.message)
        except UnreadableFileError:
            file.close()
            raise
        if not lazy or not datasets:
            file.close()
        if not datasets:
            raise NotUSIDError(problems[0] if problems else "this HDF5 file holds no numeric dataset to convert (`usidbridge info` shows its tree)", path)
        for problem in problems:
            warnings.warn(f"{path}: skipped {problem}", stacklevel=2)
        return datasets


FORMAT = Hdf5Format()
