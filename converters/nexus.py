"""NeXus: every NXdata of any NeXus file; NXentry/NXdata files; dual files that are NeXus and h5USID.

Mapping between the file and the model (one Dataset per NXdata, plus one per ``errors`` dataset):

=================================================  =============================================
NeXus                                              `Dataset`
=================================================  =============================================
``@signal`` dataset (or old-style ``signal=1``)    N-D data; ``long_name`` → quantity, ``units``
``@axes`` + ``AXISNAME_indices`` (or ``axis=n``)   one dim per axis: name, ``units``, values; "."
                                                   or a missing axis → index values 0, 1, 2, ...
``@usidbridge_spectroscopic`` (ours)               which dims are spectroscopic; else
``@interpretation`` spectrum / image, on the       the last one / two axes (when others remain);
signal (NeXus) or the group (HyperSpy)             else every dim is a position. ``spectroscopic=``
                                                   (names or a count of trailing axes) overrides
``errors`` / ``<signal>_errors``                   a second Dataset, quantity "<quantity> errors"
``@default`` on the root and NXentry               the order of the datasets (the default first)
NXentry fields, NXdata attributes                  ``metadata["nexus"]``
NXcollection ``usidbridge_metadata`` (ours)        every other ``metadata`` key
``@usidbridge_placeholders`` (ours)                USID's size-1 placeholder dims, which are not
                                                   written as axes (an image is 2-D, a spectrum
                                                   1-D), restored on reading
=================================================  =============================================

Written signals carry ``@interpretation`` (on the signal, as NeXus says, and on the NXdata group,
where HyperSpy looks): "spectrum" for one trailing spectroscopic dim, "image" for two, or for an
image over the positions; so HyperSpy, xarray and NeXus plotters see the navigation / signal split.

Non-grid positions are written as one position axis "position" with one auxiliary coordinate per
label (``LABEL_indices = 0``) and the USID index table ``usidbridge_position_indices`` beside them.
Axes keep their stored order: descending and non-uniform axes come back as written.

With ``dual=True`` the file is h5USID (written by the registered h5usid format) and NeXus at once,
with the data stored once: each NXdata holds its signal N-D, as a plain NeXus export does, and the
Main dataset in its Channel group is an HDF5 virtual dataset over the whole of it (2-D, the same
values in the same C order), which pyUSID and any HDF5 reader read as a plain dataset.
Files are read and written with h5py (lazy reads, object references); nexusformat is the peer the
tests check our files with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from usidbridge import registry
from usidbridge.attributes import attribute, read_attrs, string_attr, string_list_attr
from usidbridge.codec import load_json, plain
from usidbridge.errors import ModelError, NotUSIDError, UnreadableFileError
from usidbridge.hdf import damaged_hdf5, has_hdf5_signature, holds_marked, open_hdf5, path_of, read_tree, read_whole, require_backed, sniffed, subgroups, unbacked_size, write_tree
from usidbridge.lazy import as_dask
from usidbridge.model import Ancillary, Dataset, Dimension, describe_placeholders, from_labelled, placeholder_axes, restore_placeholders, unique_per_side
from usidbridge.output import COMPRESSION_HELP, LIBVER, compression_filter, copy_nd, new_hdf5, row_chunks
from usidbridge.registry import Format, Profile

SPECTROSCOPIC_ATTR = "usidbridge_spectroscopic"
PLACEHOLDERS_ATTR = "usidbridge_placeholders"
POSITION_INDICES = "usidbridge_position_indices"
METADATA_COLLECTION = "usidbridge_metadata"
ORIGINAL_NAME = "usidbridge_name"
LAYOUT_KEY = "nexus"
ENTRY = "entry"  # the NXentry this writer makes
NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def nx_class(obj: h5py.HLObject) -> str | None:
    return string_attr(obj, "NX_class")


def _names(value: Any) -> list[str]:
    """An axes-like attribute as a list of names (array, or one string separated by ':' or ',')."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(item).strip() for item in value]
    return [name.strip() for name in re.split(r"[:,]", str(value)) if name.strip()]


def nxdata_groups(file: h5py.File) -> list[h5py.Group]:
    """Every NXdata group, the ``@default`` chain first, then the others in file order.

    The tree is walked iteratively and each object is visited once (tracked by object, not by
    path), so link cycles and deep trees end; the ``@default`` chain is followed once per group.
    """
    found: list[h5py.Group] = []
    seen = {file.id}
    stack = [item for _name, item in reversed(subgroups(file))]
    while stack:
        group = stack.pop()
        if group.id in seen:
            continue
        seen.add(group.id)
        if nx_class(group) == "NXdata":
            found.append(group)
        stack.extend(item for _name, item in reversed(subgroups(group)))
    default: list[h5py.Group] = []
    group, followed = file, {file.id}
    while isinstance(group, h5py.Group):
        name = string_attr(group, "default")
        if not name or name not in group or isinstance(group.get(name, getlink=True), h5py.ExternalLink):
            break
        group = group[name]
        if not isinstance(group, h5py.Group) or group.id in followed:
            break
        followed.add(group.id)
        if nx_class(group) == "NXdata":
            default.append(group)
            break
    return default + [group for group in found if group.id not in {chosen.id for chosen in default}]


def _signal(group: h5py.Group) -> h5py.Dataset | None:
    name = string_attr(group, "signal")
    if name and isinstance(group.get(name), h5py.Dataset):
        return group[name]
    for item in group.values():
        if isinstance(item, h5py.Dataset) and str(plain(item.attrs.get("signal", ""))) == "1":
            return item
    return None


def _old_style_axis(item: h5py.Dataset) -> tuple[int | None, int]:
    """``(axis, primary)`` of an old-style NeXus axis dataset (``axis=n`` attribute); None when it has none or it is not a number."""
    try:
        return int(plain(item.attrs["axis"])), int(plain(item.attrs.get("primary", 1)))
    except (KeyError, ValueError, TypeError):
        return None, 0


def _axis_names(group: h5py.Group, signal: h5py.Dataset) -> list[str | None]:
    """The axis dataset name of each dimension of the signal (None for an index axis)."""
    names: list[str | None] = [None] * signal.ndim
    listed = _names(plain(attribute(group, "axes"))) or _names(plain(attribute(signal, "axes")))
    for axis, name in enumerate(listed[: signal.ndim]):
        names[axis] = None if name == "." else name
    for key in group.attrs:  # h5py gives names that are not UTF-8 (damaged) as bytes: they name no axis
        if isinstance(key, str) and key.endswith("_indices") and key[: -len("_indices")] in group:
            indices = np.atleast_1d(attribute(group, key))
            if indices.size == 1 and indices.dtype.kind in "iu" and 0 <= int(indices[0]) < signal.ndim and names[int(indices[0])] is None:
                names[int(indices[0])] = key[: -len("_indices")]
    if not listed:
        old_style = [(axis, primary, name) for name, item in group.items() if isinstance(item, h5py.Dataset) for axis, primary in [_old_style_axis(item)] if axis is not None]
        for axis, _primary, name in sorted(old_style, key=lambda entry: -entry[1]):
            if 1 <= axis <= signal.ndim and names[axis - 1] is None:
                names[axis - 1] = name
    return names


def _dims(group: h5py.Group, axis_names: list[str | None], shape: tuple[int, ...]) -> list[Dimension]:
    """One dim per signal axis: its axis dataset (our original name, units, values) or index values."""
    dims = []
    for axis, (name, size) in enumerate(zip(axis_names, shape)):
        values, units, label = np.arange(size, dtype=np.float64), "", name or f"axis_{axis}"
        item = group.get(name) if name else None
        if isinstance(item, h5py.Dataset) and item.ndim == 1 and item.dtype.kind in "iuf":
            raw = read_whole(item, group.file.filename)
            if raw.size == size:
                values = raw
            elif raw.size == size + 1:  # histogram bin edges: the centres
                values = (raw[:-1] + raw[1:]) / 2
            units = string_attr(item, "units") or ""
            label = string_attr(item, ORIGINAL_NAME) or label
        dims.append(Dimension(label, units, values))
    return dims


def _spectroscopic(group: h5py.Group, signal: h5py.Dataset, dims: list[Dimension], axis_names: list[str | None], override: Sequence[str] | int | None) -> list[int]:
    """The numbers of the spectroscopic axes: `override`, else our attribute, else @interpretation, else none."""
    count = len(dims)
    if isinstance(override, int):
        return list(range(count - override, count)) if override else []
    if override is not None:
        return [axis for axis, dim in enumerate(dims) if dim.name in override or axis_names[axis] in override]
    ours = string_list_attr(group, SPECTROSCOPIC_ATTR)
    if ours is not None:
        return [axis for axis, name in enumerate(axis_names) if name and name in ours]
    interpretation = string_attr(signal, "interpretation") or string_attr(group, "interpretation") or ""  # NeXus: on the signal; HyperSpy: on the group
    trailing = {"spectrum": 1, "image": 2}.get(interpretation, 0)
    return list(range(count - trailing, count)) if 0 < trailing < count else []


def _placeholders(group: h5py.Group) -> Any:
    """The size-1 placeholder dims our writer left out of the signal (``@usidbridge_placeholders``)."""
    text = string_attr(group, PLACEHOLDERS_ATTR)
    try:
        return load_json(text, PLACEHOLDERS_ATTR) if text else []
    except ModelError:
        return []


def _entry_metadata(group: h5py.Group) -> dict[str, Any]:
    entry = group.parent
    fields = {}
    for name, item in entry.items():
        if isinstance(item, h5py.Dataset) and item.shape is not None and item.size <= 16 and item.dtype.kind in "biufSOU":
            fields[name] = plain(item[()])
    return {"path": group.name, "entry": entry.name, "entry_fields": fields, "attributes": read_attrs(group)}


def read_nxdata(group: h5py.Group, lazy: bool, spectroscopic: Sequence[str] | int | None = None) -> list[Dataset]:
    """The Dataset of one NXdata group, and of its errors when present."""
    signal = _signal(group)
    if signal is None:
        return []
    metadata: dict[str, Any] = {LAYOUT_KEY: _entry_metadata(group)}
    collection = group.get(METADATA_COLLECTION)
    if isinstance(collection, h5py.Group):
        metadata.update({key: value for key, value in read_tree(collection).items() if key != "NX_class"})
    signal_name = path_of(signal).rsplit("/", 1)[-1]
    quantity = string_attr(signal, "long_name") or (path_of(group).rsplit("/", 1)[-1] if signal_name == "data" else signal_name)
    units = string_attr(signal, "units") or ""
    source = f"{group.file.filename}::{group.name}"
    results = []
    problem = unbacked_size(signal) or (f"{path_of(signal)}: the NXdata signal has no dataspace (h5py.Empty), so no data" if signal.shape is None else None)
    if problem:  # before the dims: an index dim of 10^12 values would fill the memory
        raise UnreadableFileError(problem, group.file.filename)
    axis_names = _axis_names(group, signal)  # everything read of the signal's attributes comes before its data handle (see `require_backed`)
    dims = _dims(group, axis_names, signal.shape)
    spectral_axes = _spectroscopic(group, signal, dims, axis_names, spectroscopic)
    table = group.get(POSITION_INDICES)
    candidates = [(signal, ""), (group.get("errors", group.get(f"{signal_name}_errors")), " errors")]
    shape = signal.shape
    for data, suffix in candidates:
        if not isinstance(data, h5py.Dataset) or data.shape != shape:
            continue
        data = require_backed(data, group.file.filename)
        array = data if lazy else data[()]
        attributes = {"name": "Raw_Data", "quantity": quantity + suffix, "units": units, "metadata": metadata, "source": source + suffix.replace(" ", "/")}
        if isinstance(table, h5py.Dataset):
            results.append(_non_grid(group, table, array, dims[1:], attributes))
            continue
        results.append(restore_placeholders(from_labelled(array, unique_per_side(dims, spectral_axes), spectral_axes, **attributes), _placeholders(group)))
    return results


def _non_grid(group: h5py.Group, table: h5py.Dataset, array: Any, spec_dims: list[Dimension], attributes: dict[str, Any]) -> Dataset:
    """Positions from our table of indices and the 1-D axis datasets it names (``@axes``, else its labels)."""
    labels, units = string_list_attr(table, "labels") or [], string_list_attr(table, "units") or []
    axes = string_list_attr(table, "axes") or labels
    columns = [group.get(axis) for axis in axes]
    if not axes or table.ndim != 2 or any(not isinstance(column, h5py.Dataset) or column.shape != (table.shape[0],) for column in columns):
        raise ModelError(f"{group.name}: the position table {table.shape} names axes {axes!r:.80}, which are not 1-D datasets of one value per row")
    values = np.stack([column[()] for column in columns], axis=1)
    pos = Ancillary.from_table(labels, units, table[()], values)
    spectral = int(np.prod([dim.size for dim in spec_dims])) if spec_dims else 1
    if int(np.prod(array.shape)) != pos.size * spectral:
        raise ModelError(f"{group.name}: a signal of shape {array.shape} is not {pos.size} positions × {spectral} spectroscopic values")
    data = array
    if len(array.shape) != 2:
        data = (array if isinstance(array, np.ndarray) else as_dask(array)).reshape(pos.size, spectral)
    spec = Ancillary(spec_dims or [Dimension("arb", "a.u.", [0.0])])
    return Dataset(data, pos, spec, **attributes)


def _safe(name: str, taken: set[str]) -> str:
    safe = NAME_UNSAFE.sub("_", name) or "axis"
    if safe[0].isdigit():
        safe = "_" + safe
    while safe in taken:
        safe += "_"
    taken.add(safe)
    return safe


def _write_axis(group: h5py.Group, name: str, dim: Dimension) -> None:
    axis = group.create_dataset(name, data=dim.values)
    axis.attrs[ORIGINAL_NAME] = dim.name
    axis.attrs["units"] = dim.units
    axis.attrs["long_name"] = f"{dim.name} ({dim.units})" if dim.units else dim.name


def _signal_layout(dataset: Dataset) -> tuple[list[Dimension | None], tuple[int, ...], list[int]]:
    """The NXdata signal's axes (None: the position axis of non-grid positions), its shape, and the
    USID placeholder axes it drops (`placeholder_axes`)."""
    if not dataset.is_grid:  # non-grid positions: one position axis, the spectroscopic axes as they are
        spectral = list(dataset.spec.dims) if dataset.spec.is_grid else [Dimension("spectral_index", "", dataset.spec.size)]
        return [None, *spectral], (dataset.pos.size, *(dim.size for dim in spectral)), []
    dropped = placeholder_axes(dataset)
    dims: list[Dimension | None] = [dim for axis, dim in enumerate(dataset.dims) if axis not in dropped]
    return dims, tuple(dim.size for dim in dims if dim is not None), dropped


def write_nxdata(entry: h5py.Group, name: str, dataset: Dataset, compression: str | None = None) -> h5py.Group:
    """One NXdata for `dataset`, its signal written N-D (`_signal_layout`)."""
    group = entry.create_group(name, track_order=True)
    group.attrs["NX_class"] = "NXdata"
    group.attrs["signal"] = "data"
    taken = {"data", "errors", POSITION_INDICES, METADATA_COLLECTION}
    dims, shape, dropped = _signal_layout(dataset)
    dropped_positions = sum(1 for axis in dropped if axis < len(dataset.pos.dims))
    if dropped:
        group.attrs[PLACEHOLDERS_ATTR] = json.dumps(describe_placeholders(dataset, dropped))
    compression = compression if int(np.prod(shape)) > 1 else None
    data = group.create_dataset("data", shape=shape, dtype=dataset.dtype, chunks=row_chunks(shape, dataset.dtype.itemsize, compression), compression=compression_filter(compression))
    copy_nd(data, dataset.data)
    data.attrs["units"] = dataset.units
    data.attrs["long_name"] = dataset.quantity
    axes = []
    for axis, dim in enumerate(dims):
        if dim is None:
            axes.append(".")
            continue
        axis_name = _safe(dim.name, taken)
        _write_axis(group, axis_name, dim)
        group.attrs[f"{axis_name}_indices"] = np.int32(axis)
        axes.append(axis_name)
    if dims[0] is None:
        position_names = []
        for column, (label, unit) in enumerate(zip(dataset.pos.labels, dataset.pos.units)):
            axis_name = _safe(label, taken)
            _write_axis(group, axis_name, Dimension(label, unit, dataset.pos.values[:, column]))
            group.attrs[f"{axis_name}_indices"] = np.int32(0)
            position_names.append(axis_name)
        axes[0] = position_names[0]
        table = group.create_dataset(POSITION_INDICES, data=dataset.pos.indices)
        table.attrs["axes"] = np.array([name.encode() for name in position_names])
        table.attrs["labels"] = np.array([label.encode() for label in dataset.pos.labels])
        table.attrs["units"] = np.array([unit.encode() for unit in dataset.pos.units])
    group.attrs["axes"] = np.array([name.encode() for name in axes])
    positions = 1 if dims[0] is None else len(dataset.pos.dims) - dropped_positions
    spectral_axes = axes[positions:]
    group.attrs[SPECTROSCOPIC_ATTR] = np.array([name.encode() for name in spectral_axes if name != "."] or [b""])
    interpretation = _interpretation(positions, len(spectral_axes))
    if interpretation:  # NeXus reads it on the signal, HyperSpy on the group
        group.attrs["interpretation"] = data.attrs["interpretation"] = interpretation
    extra = {key: value for key, value in dataset.metadata.items() if key not in (LAYOUT_KEY, "h5usid")}
    if extra:
        collection = group.create_group(METADATA_COLLECTION)
        collection.attrs["NX_class"] = "NXcollection"
        write_tree(collection, extra)
    return group


def _interpretation(positions: int, spectral: int) -> str | None:
    """NeXus @interpretation of the signal: what its trailing axes are, as HyperSpy and NeXus plotters read it."""
    if spectral:
        return {1: "spectrum", 2: "image"}.get(spectral)
    return "spectrum" if positions == 1 else "image" if positions >= 2 else None


def _entry(file: h5py.File, name: str = ENTRY) -> h5py.Group:
    entry = file.create_group(name, track_order=True)
    entry.attrs["NX_class"] = "NXentry"
    file.attrs["default"] = name
    file.attrs["NX_class"] = "NXroot"
    file.attrs["creator"] = "usidbridge"
    return entry


def _entry_names(datasets: Sequence[Dataset]) -> list[str]:
    """The NXdata group name of each dataset: its quantity, made an HDF5/NeXus name and distinct."""
    taken: set[str] = set()
    return [_safe(dataset.quantity, taken) for dataset in datasets]


def _write_entry(file: h5py.File, datasets: Sequence[Dataset], compression: str | None) -> None:
    """The NXentry with one NXdata per dataset (`_entry_names`), the first the default."""
    entry = _entry(file)
    names = _entry_names(datasets)
    for name, dataset in zip(names, datasets):
        write_nxdata(entry, name, dataset, compression=compression)
    entry.attrs["default"] = names[0]


def write_file(datasets: Sequence[Dataset], path: Path, compression: str | None = None) -> None:
    with new_hdf5(path, track_order=True) as file:
        _write_entry(file, datasets, compression)


def write_dual(datasets: Sequence[Dataset], path: Path, compression: str | None = None) -> None:
    """h5USID written by the registered h5usid format, whose Main datasets are views (HDF5 virtual
    datasets) of the N-D signals of the NXdata groups written after it: the data stored once."""
    views = [(f"/{ENTRY}/{name}/data", _signal_layout(dataset)[1]) for name, dataset in zip(_entry_names(datasets), datasets)]
    registry.get("h5usid").write(datasets, path, compression=compression, views=views)
    with h5py.File(path, "r+", libver=LIBVER) as file:
        _write_entry(file, datasets, compression)


class NexusFormat(Format):
    name = "nexus"
    description = "NeXus NXdata (HDF5); dual NeXus + h5USID files"
    extensions = (".nxs", ".nx5", ".nexus")
    profile = Profile(non_grid="encodes")
    read_options = {"spectroscopic": "which axes are spectroscopic: a list of axis names, or a count of trailing axes"}
    write_options = {"dual": "true: one file that is h5USID and NeXus at once, the data stored once", "compression": COMPRESSION_HELP}

    def sniff(self, head: bytes, path: Path) -> int:
        if not has_hdf5_signature(head):
            return 0
        with sniffed(path) as file:
            return 2 if holds_marked(file, h5py.Group, ["NX_class"], where=lambda group: nx_class(group) == "NXdata") else 0

    def read(self, path: Path, *, lazy: bool = False, spectroscopic: Sequence[str] | int | None = None) -> list[Dataset]:
        file = open_hdf5(path)
        try:
            with damaged_hdf5(path, "NeXus"):
                datasets = [dataset for group in nxdata_groups(file) for dataset in read_nxdata(group, lazy, spectroscopic)]
        except ModelError as error:
            file.close()
            raise UnreadableFileError(f"an NXdata group does not describe its signal: {error.message}", path) from None
        except UnreadableFileError:
            file.close()
            raise
        if not lazy:
            file.close()
        if not datasets:
            file.close()
            raise NotUSIDError("no NXdata group with a signal in this file", path)
        return datasets

    def write(self, datasets: Sequence[Dataset], path: Path, dual: bool = False, compression: str | None = None) -> None:
        if dual:
            write_dual(datasets, path, compression=compression)
        else:
            write_file(datasets, path, compression=compression)


FORMAT = NexusFormat()
