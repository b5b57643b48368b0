"""HyperSpy signals: `to_hyperspy`, `from_hyperspy`, .hspy files, and a RosettaSciIO-style `file_reader`.

The mapping between HyperSpy's signals and the model is the hub's (`usidbridge.signals`, shared
with the RosettaSciIO gateway): navigation axes ↔ position dims, signal axes ↔ spectroscopic dims,
an image with no navigation ↔ position dims with USID's placeholder, uniform axes where the values
are uniform to within rounding (so ``rebin`` and ``fft`` work), ``original_metadata`` ↔
``metadata``. This module adds what needs HyperSpy itself: signal objects, lazy signals (dask), a
compound dataset as one signal per field, and .hspy files.

``hs.load("file.h5", file_format=usidbridge.converters.hyperspy)`` loads h5USID (or any format
usidbridge reads) with the right navigation / signal split: `file_reader` returns the
RosettaSciIO dicts HyperSpy expects. HyperSpy alone cannot tell an h5USID ``.h5`` from its other
``.h5`` formats, and its own USID reader puts every dim in the signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from usidbridge import progress
from usidbridge.api import read
from usidbridge.errors import ModelError, UnreadableFileError
from usidbridge.hdf import compression_filter, has_hdf5_signature, refuse_unbacked, sniffed
from usidbridge.model import Dataset
from usidbridge.registry import Format, Profile
from usidbridge.signals import dataset_from_signal, fields, signal_dict, signal_dicts


# What HyperSpy's .hspy reader (RosettaSciIO, on h5py) raises for a damaged file: h5py's OSError and
# RuntimeError, and what Python raises on the missing or mistyped groups and attributes it then meets.
HSPY_FAILURES = (OSError, RuntimeError, ValueError, KeyError, IndexError, TypeError, AttributeError, UnicodeDecodeError, OverflowError, NotImplementedError)


def to_hyperspy(dataset: Dataset) -> Any:
    """The dataset as a HyperSpy signal (a list of signals, one per field, for compound data)."""
    from hyperspy.io import dict2signal

    signals = [dict2signal(signal_dict(part, lazy=part.is_lazy), lazy=part.is_lazy) for part in fields(dataset)]
    return signals if dataset.dtype.fields else signals[0]


def from_hyperspy(signal: Any) -> Dataset:
    """One Dataset from a HyperSpy signal (lazy stays lazy)."""
    axes = [{"name": axis.name, "units": axis.units, "navigate": axis.navigate, "axis": axis.axis} for axis in signal.axes_manager._axes]
    as_dict = {"data": signal.data, "axes": axes, "metadata": signal.metadata.as_dictionary(), "original_metadata": signal.original_metadata.as_dictionary()}
    dataset = dataset_from_signal(as_dict)
    dataset.source = str(dataset.metadata["hyperspy"].get("General", {}).get("original_filename", "")) or None
    return dataset


def file_reader(filename: str, lazy: bool = False, **kwds: Any) -> list[dict[str, Any]]:
    """RosettaSciIO-style reader: ``hs.load(path, file_format=usidbridge.converters.hyperspy)``."""
    return signal_dicts(read(filename, lazy=lazy), lazy=lazy)


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
        with sniffed(path) as file:
            return 2 if str(file.attrs.get("file_format", "")).lower() == "hyperspy" else 0

    def read(self, path: Path, *, lazy: bool = False) -> list[Dataset]:
        import hyperspy.api as hs
        from traits.api import TraitError

        refuse_unbacked(path)  # HyperSpy reads an eager file's datasets whole, whatever size they declare
        try:
            signals = hs.load(path, lazy=lazy, file_format="hspy")
        except (*HSPY_FAILURES, TraitError) as error:  # TraitError: an axis attribute of the wrong type
            raise UnreadableFileError(f"HyperSpy cannot read this file ({type(error).__name__}: {error})", path) from None
        try:
            return [from_hyperspy(signal) for signal in (signals if isinstance(signals, list) else [signals])]
        except ModelError as error:
            raise UnreadableFileError(f"the signal HyperSpy read does not fit its axes: {error.message}", path) from None

    def write(self, datasets: Sequence[Dataset], path: Path, compression: str | None = "gzip") -> None:
        with progress.dask_tasks():
            to_hyperspy(datasets[0]).save(path, overwrite=True, file_format="hspy", compression=compression_filter(compression), show_progressbar=False)


FORMAT = HyperspyFormat()
