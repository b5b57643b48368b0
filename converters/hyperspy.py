"""HyperSpy signals: `to_hyperspy`, `from_hyperspy`, .hspy files, and a RosettaSciIO-style `file_reader`.

The mapping between HyperSpy's signals and the model is the hub's (`usidbridge.signals`, shared
with the RosettaSciIO gateway): navigation axes ↔ position dims, signal axes ↔ spectroscopic dims,
an image with no navigation ↔ position dims with USID's placeholder, uniform axes where the values
are uniform to within rounding (so ``rebin`` and ``fft`` work), ``original_metadata`` ↔
``metadata``. This module adds what needs HyperSpy itself: signal objects, lazy signals (dask), a
compound dataset as one signal per field, and .hspy files.

HyperSpy's tree browser and .hspy writer keep a metadata item unchanged only when its key is a
name of its own (not ``_``-prefixed, no ``/``, not a method, no other key of the level slugified
alike) and its value is text without NUL, a number, None, a numeric array, or a list of one plain
type. The other items of each level are stored together, encoded (`usidbridge.codec.encode_value`),
under ``usidbridge_encoded``, and come back as they were.

``hs.load("file.h5", file_format=usidbridge.converters.hyperspy)`` loads h5USID (or any format
usidbridge reads) with the right navigation / signal split: `file_reader` returns the
RosettaSciIO dicts HyperSpy expects. HyperSpy alone cannot tell an h5USID ``.h5`` from its other
``.h5`` formats, and its own USID reader puts every dim in the signal.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from usidbridge import progress
from usidbridge.api import read
from usidbridge.codec import decode_value, encode_value, is_encoded
from usidbridge.errors import ModelError, UnreadableFileError
from usidbridge.hdf import has_hdf5_signature, refuse_for_whole_readers, sniffed
from usidbridge.model import Dataset
from usidbridge.output import compression_filter
from usidbridge.registry import Format, Profile
from usidbridge.signals import dataset_from_signal, fields, hyperspy_dict, signal_dict, signal_dicts


# What HyperSpy's .hspy reader (RosettaSciIO, on h5py) raises for a damaged file: h5py's OSError and
# RuntimeError, and what Python raises on the missing or mistyped groups and attributes it then meets.
HSPY_FAILURES = (OSError, RuntimeError, ValueError, KeyError, IndexError, TypeError, AttributeError, UnicodeDecodeError, OverflowError, NotImplementedError)


ENCODED_ITEMS = "usidbridge_encoded"
PLAIN_LIST_ITEMS = (bool, int, float, str)
INT64 = range(-(2**63), 2**63)


def _kept(value: Any) -> bool:
    """True when HyperSpy stores `value` in a .hspy file and reads it back unchanged."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return "\x00" not in value and value != "_None_"  # HyperSpy's mark for None
    if isinstance(value, int) and not isinstance(value, bool):
        return value in INT64
    if value is None or isinstance(value, (bool, float, complex)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biufc"
    if isinstance(value, (list, tuple)):  # HyperSpy stores a list as one array: mixed items come back converted
        kinds = {type(item) for item in value}
        return len(kinds) <= 1 and kinds <= set(PLAIN_LIST_ITEMS) and all(_kept(item) for item in value)
    return False


def _carried(tree: Mapping[str, Any]) -> dict[str, Any]:
    """`tree` as HyperSpy keeps it: at each level, the items it would change go encoded under `ENCODED_ITEMS`."""
    from hyperspy.misc.utils import DictionaryTreeBrowser, slugify

    slugs = Counter(slugify(str(key), valid_variable_name=True) for key in tree)
    kept: dict[str, Any] = {}
    encoded: dict[str, Any] = {}
    for key, value in tree.items():
        slug = slugify(str(key), valid_variable_name=True)
        named = (
            isinstance(key, str) and key not in (ENCODED_ITEMS, ".", "..") and not key.startswith("_") and "/" not in key  # HDF5 names
            and slugs[slug] == 1 and not hasattr(DictionaryTreeBrowser, slug)
        )
        if named and isinstance(value, Mapping):
            kept[key] = _carried(value)
        elif named and _kept(value):
            kept[key] = value
        else:
            encoded[str(key)] = value
    if encoded:
        kept[ENCODED_ITEMS] = encode_value(encoded)
    return kept


def _restored(tree: Any) -> Any:
    """The inverse of `_carried`: each level's encoded items back in place."""
    if not isinstance(tree, dict):
        return tree
    restored = {key: _restored(value) for key, value in tree.items() if key != ENCODED_ITEMS}
    encoded = tree.get(ENCODED_ITEMS)
    decoded = decode_value(encoded) if isinstance(encoded, str) and is_encoded(encoded) else None
    if isinstance(decoded, dict):
        restored.update(decoded)
    elif encoded is not None:
        restored[ENCODED_ITEMS] = encoded  # not ours after all: kept as it is
    return restored


def _for_hyperspy(signal: dict[str, Any]) -> dict[str, Any]:
    return {**signal, "original_metadata": _carried(signal["original_metadata"])}


def to_hyperspy(dataset: Dataset) -> Any:
    """The dataset as a HyperSpy signal (a list of signals, one per field, for compound data)."""
    from hyperspy.io import dict2signal

    signals = [dict2signal(_for_hyperspy(signal_dict(part, lazy=part.is_lazy)), lazy=part.is_lazy) for part in fields(dataset)]
    return signals if dataset.dtype.fields else signals[0]


def from_hyperspy(signal: Any) -> Dataset:
    """One Dataset from a HyperSpy signal (lazy stays lazy)."""
    dataset = dataset_from_signal(hyperspy_dict(signal))
    dataset.metadata = _restored(dataset.metadata)
    dataset.source = str(dataset.metadata["hyperspy"].get("General", {}).get("original_filename", "")) or None
    return dataset


def file_reader(filename: str, lazy: bool = False, **kwds: Any) -> list[dict[str, Any]]:
    """RosettaSciIO-style reader: ``hs.load(path, file_format=usidbridge.converters.hyperspy)``."""
    return [_for_hyperspy(signal) for signal in signal_dicts(read(filename, lazy=lazy), lazy=lazy)]


def _untrack(path: Path) -> None:
    """Let a lazily read file close when its lazy data is freed. RosettaSciIO (0.15) keeps every
    .hspy file it reads lazily open in a registry for the life of the process, to close them before
    it overwrites one: a process that reads many lazily (a batch worker, a notebook's loop) holds an
    HDF5 file, its memory and a file descriptor for each (the fuzzer's worker grew to 9 GiB).
    usidbridge never writes over a file it reads (outputs are renamed into place), so the entry goes."""
    from rsciio.hspy import _api

    handles, lock = getattr(_api, "_lazy_file_handles", None), getattr(_api, "_lazy_file_handles_lock", None)
    if isinstance(handles, dict) and lock is not None:
        with lock:
            handles.pop(os.fspath(Path(path).absolute()), None)


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

        refuse_for_whole_readers(path)  # HyperSpy reads an eager file's datasets whole, whatever size they declare, and its groups by recursion
        try:
            signals = hs.load(path, lazy=lazy, file_format="hspy")
        except (*HSPY_FAILURES, TraitError) as error:  # TraitError: an axis attribute of the wrong type
            raise UnreadableFileError(f"HyperSpy cannot read this file ({type(error).__name__}: {error})", path) from None
        if lazy:
            _untrack(path)
        try:
            return [from_hyperspy(signal) for signal in (signals if isinstance(signals, list) else [signals])]
        except ModelError as error:
            raise UnreadableFileError(f"the signal HyperSpy read does not fit its axes: {error.message}", path) from None

    def write(self, datasets: Sequence[Dataset], path: Path, compression: str | None = "gzip") -> None:
        with progress.dask_tasks():
            to_hyperspy(datasets[0]).save(path, overwrite=True, file_format="hspy", compression=compression_filter(compression), show_progressbar=False)
        if not path.suffix and not path.exists():  # HyperSpy adds .hspy to a name without an extension: the file is the name given
            path.with_suffix(".hspy").rename(path)


FORMAT = HyperspyFormat()
