"""h5USID, the home format: USID stored in HDF5 as pyUSID and pycroscopy write it.

Mapping between the file and the model:

====================================================  ==========================================
h5USID                                                `Dataset`
====================================================  ==========================================
Main dataset (2-D, any Main in the file)              ``data`` (h5py dataset when lazy)
``quantity`` / ``units`` attributes                   ``quantity`` / ``units``
Position_Indices / _Values (n_pos, U), any order      ``pos`` (`Ancillary.from_table`)
Spectroscopic_Indices / _Values (V, n_spec)           ``spec`` (transposed to (n_spec, V))
other attributes of the Main dataset                  ``metadata["h5usid"]["main"]``
attributes of its group, the group above, the root    ``metadata["h5usid"]["channel" | "measurement" | "file"]``
``Metadata`` group beside the Main dataset            every other ``metadata`` key (groups = dicts)
====================================================  ==========================================

Written layout: ``/Measurement_NNN/Channel_NNN/<name>``. Datasets with the same positions share one
measurement, and an ancillary used by several channels is stored once in the measurement group.
Columns are written slowest first (pyUSID >= 0.0.7); indices as uint32; values as float32 only
where that is lossless. Results of processing go to ``<Source>-<Tool>_NNN`` groups with
`add_results`.
"""

from __future__ import annotations

import functools
import platform
import posixpath
import socket
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from usidbridge import __version__
from usidbridge.attributes import read_attrs, string_attr, string_list, string_list_attr, write_attr, write_attrs
from usidbridge.errors import ModelError, NotUSIDError, UnreadableFileError, WriteError
from usidbridge.hdf import damaged_hdf5, dereference, has_hdf5_signature, holds_marked, open_hdf5, path_of, read_tree, read_whole, require_backed, sniffed, write_tree
from usidbridge.lazy import BackgroundRead, FileArray
from usidbridge.model import Ancillary, Dataset, group_by_positions
from usidbridge.output import COMPRESSION_HELP, LIBVER, compression_filter, copy_rows, failed_write, new_hdf5, row_chunks
from usidbridge.registry import Format, Profile
from usidbridge.rules import ANCILLARY_NAMES, main_candidates

METADATA_GROUP = "Metadata"
LAYOUT_KEY = "h5usid"
NAME_ATTR = "usidbridge_name"
RESERVED_MAIN_ATTRS = frozenset(ANCILLARY_NAMES) | {"quantity", "units", NAME_ATTR}
ANCILLARY_BLOCK_ROWS = 2**20


@functools.cache
def _machine() -> dict[str, str]:
    """Host name and platform, asked once per process (each costs milliseconds: a name lookup, a read of the executable)."""
    return {"machine_id": socket.getfqdn(), "platform": platform.platform()}


def bookkeeping() -> dict[str, str]:
    """The attributes USID asks of every Main dataset and group it creates."""
    return {"timestamp": time.strftime("%Y_%m_%d-%H_%M_%S"), **_machine()}


def stamp(obj: h5py.HLObject, restored: Mapping[str, Any]) -> None:
    """Book-keeping attributes (kept from the source when it had them), then the source's own attributes."""
    write_attrs(obj, {**bookkeeping(), **restored, "usidbridge_version": __version__})


def read_ancillary(indices: h5py.Dataset, values: h5py.Dataset, spectroscopic: bool, path: str) -> Ancillary:
    """An ancillary from its two datasets in the file at `path`; Spectroscopic tables are stored (V, n) and come back (n, V)."""
    labels = string_list_attr(indices, "labels") or string_list_attr(values, "labels")
    units = string_list_attr(indices, "units") or string_list_attr(values, "units")
    if labels is None or units is None:
        raise ModelError(f"{indices.name}: the 'labels' and 'units' attributes are missing or not strings")
    index_table, value_table = read_whole(indices, path), read_whole(values, path)
    if spectroscopic:
        index_table, value_table = index_table.T, value_table.T
    return Ancillary.from_table(labels, units, index_table, value_table)


def _tables(main: h5py.Dataset, file: h5py.File) -> dict[str, h5py.Dataset]:
    tables, attributes = {}, main.attrs
    for name in ANCILLARY_NAMES:
        target = dereference(file, attributes.get(name))
        if not isinstance(target, h5py.Dataset):
            raise ModelError(f"{main.name}: the {name!r} reference is missing, dangling or not a dataset")
        tables[name] = target
    return tables


def read_main(main: h5py.Dataset, lazy: bool) -> Dataset:
    """One Main dataset as a `Dataset` (data left in the file when `lazy`).

    Read eagerly, the data comes in another thread while the metadata is parsed here (`BackgroundRead`).
    The file, its name and the Main dataset's path are asked of h5py once: each asking builds a new
    object (10-30 us), and a small file's whole read is a few milliseconds.
    """
    if main.shape is None or len(main.shape) != 2:
        raise ModelError(f"{main.name}: a Main dataset is 2-D (positions x spectral values); this one's shape is {main.shape}")
    quantity, units = string_attr(main, "quantity"), string_attr(main, "units")
    if quantity is None or units is None:
        raise ModelError(f"{main.name}: the 'quantity' and 'units' string attributes are required")
    file, main_path = main.file, path_of(main)
    path = file.filename
    with BackgroundRead(None if lazy else main, path) as background:
        tables = _tables(main, file)
        pos = read_ancillary(tables["Position_Indices"], tables["Position_Values"], False, path)
        spec = read_ancillary(tables["Spectroscopic_Indices"], tables["Spectroscopic_Values"], True, path)
        layout = {"main": read_attrs(main, skip=RESERVED_MAIN_ATTRS), "file": read_attrs(file)}
        channel_name = posixpath.dirname(main.name)  # str, or bytes for a name that is not UTF-8
        parent = file[channel_name]
        if channel_name not in ("/", b"/"):
            layout["channel"] = read_attrs(parent)
            measurement_name = posixpath.dirname(channel_name)
            if measurement_name not in ("/", b"/"):
                layout["measurement"] = read_attrs(file[measurement_name])
        extra = parent.get(METADATA_GROUP)
        metadata = read_tree(extra) if isinstance(extra, h5py.Group) else {}
        metadata[LAYOUT_KEY] = layout
        kept_name = string_attr(main, NAME_ATTR)
        data = FileArray(require_backed(main, path), path)  # last: attributes cannot be read through the reopened handle
        values = data if lazy else background.result()
    return Dataset(
        data[()] if values is None else values,
        pos,
        spec,
        name=kept_name if kept_name is not None else main_path.rsplit("/", 1)[-1],
        quantity=quantity,
        units=units,
        metadata=metadata,
        source=f"{path}::{main_path}",
    )


def _write_ancillary(group: h5py.Group, kind: str, ancillary: Ancillary, suffix: str = "", compression: str | None = "none") -> tuple[h5py.Dataset, h5py.Dataset]:
    """Write the Indices and Values datasets of one ancillary in blocks of rows (bounded memory);
    a table of one block is created with its data, in one call.

    Spectroscopic tables are stored transposed, (V, n); values are float32 only where lossless.
    With `compression`, tables of more than a few thousand entries are compressed too: an image's
    Position tables (16 bytes per pixel, 8x a 16-bit image) shrink to 1-2 % of that.
    """
    names = f"{kind}_Indices{suffix}", f"{kind}_Values{suffix}"
    dtypes = ancillary.index_dtype, ancillary.values_dtype
    storage: dict[str, Any] = {}
    if compression_filter(compression) and ancillary.size * ancillary.ndim > 4096:  # a chunk is a run of one column: shuffled, its regular steps compress 100-fold
        rows = min(ancillary.size, 2**16)
        storage = {"compression": compression_filter(compression), "shuffle": True, "chunks": (rows, 1) if kind == "Position" else (1, rows)}

    def block(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        index_rows, value_rows = ancillary.rows(start, stop, dtypes[1])  # in the stored dtype: no conversion by libhdf5 on writing
        return (index_rows, value_rows) if kind == "Position" else (index_rows.T, value_rows.T)

    if ancillary.size <= ANCILLARY_BLOCK_ROWS:
        indices, values = (group.create_dataset(name, data=table, **storage) for name, table in zip(names, block(0, ancillary.size)))
    else:
        shape = (ancillary.size, ancillary.ndim) if kind == "Position" else (ancillary.ndim, ancillary.size)
        indices, values = (group.create_dataset(name, shape=shape, dtype=dtype, **storage) for name, dtype in zip(names, dtypes))
        for start in range(0, ancillary.size, ANCILLARY_BLOCK_ROWS):
            span = np.s_[start : start + ANCILLARY_BLOCK_ROWS] if kind == "Position" else np.s_[:, start : start + ANCILLARY_BLOCK_ROWS]
            indices[span], values[span] = block(start, min(ancillary.size, start + ANCILLARY_BLOCK_ROWS))
    for table in (indices, values):
        write_attr(table, "labels", string_list(list(ancillary.labels)))
        write_attr(table, "units", string_list(list(ancillary.units)))
    return indices, values


def main_name(group: h5py.Group, name: str) -> str:
    """The HDF5 name of a Main dataset in `group`: its own name, unless that cannot name an HDF5
    object ('/', '.', empty), is taken, or is one USID gives what it writes beside a Main dataset
    (``Metadata``, the ancillary tables): then a name kept apart by a suffix."""
    safe = name.replace("/", "_") if name not in ("", ".", "..") else f"{name}_Raw_Data"
    reserved = safe == METADATA_GROUP or safe.startswith(ANCILLARY_NAMES)
    candidate, number = (f"{safe}_Main", 0) if reserved else (safe, 0)
    while candidate in group:
        number += 1
        candidate = f"{safe}_Main_{number:03d}"
    return candidate


def create_main(group: h5py.Group, dataset: Dataset, compression: str | None = "none", view: tuple[str, tuple[int, ...]] | None = None) -> h5py.Dataset:
    """Create the Main dataset (contiguous, or compressed in chunks of whole positions) and copy the data into it.

    With `view` (an HDF5 path in this file and its N-D shape, of as many values in C order), the Main
    dataset is instead a virtual dataset over the whole of that one: the data is stored once, N-D,
    by the caller (dual NeXus files), and read through the Main dataset by any HDF5 reader.
    A name `main_name` had to change is kept in the ``usidbridge_name`` attribute, and read back from it.
    """
    name = main_name(group, dataset.name)
    if view is not None:
        source_path, source_shape = view
        layout = h5py.VirtualLayout(shape=dataset.shape, dtype=dataset.dtype)
        layout[...] = h5py.VirtualSource(".", source_path, shape=source_shape, dtype=dataset.dtype)
        main = group.create_virtual_dataset(name, layout)
    else:
        main = group.create_dataset(
            name,
            shape=dataset.shape,
            dtype=dataset.dtype,
            chunks=row_chunks(dataset.shape, dataset.dtype.itemsize, compression),
            compression=compression_filter(compression),
        )
        copy_rows(main, dataset.data)
    if name != dataset.name:
        write_attr(main, NAME_ATTR, dataset.name)
    return main


def link_main(main: h5py.Dataset, dataset: Dataset, position: tuple[h5py.Dataset, h5py.Dataset], spectroscopic: tuple[h5py.Dataset, h5py.Dataset]) -> None:
    """Give the Main dataset its attributes: quantity, units, references to its ancillary datasets, book-keeping."""
    write_attr(main, "quantity", dataset.quantity)
    write_attr(main, "units", dataset.units)
    for name, target in zip(ANCILLARY_NAMES, position + spectroscopic):
        main.attrs[name] = target.ref
    stamp(main, dataset.metadata.get(LAYOUT_KEY, {}).get("main", {}))


def _layout(dataset: Dataset, part: str) -> dict[str, Any]:
    return dict(dataset.metadata.get(LAYOUT_KEY, {}).get(part, {}))


def _shared(group: h5py.Group, kind: str, members: list[tuple[Dataset, h5py.Group]], attribute: str, compression: str | None) -> dict[int, tuple]:
    """Write each distinct ancillary once: in the channel when one dataset uses it, else in `group`."""
    written: dict[int, tuple] = {}
    distinct: list[list[int]] = []
    for number, (dataset, _channel) in enumerate(members):
        for users in distinct:
            if getattr(members[users[0]][0], attribute).same_as(getattr(dataset, attribute)):
                users.append(number)
                break
        else:
            distinct.append([number])
    for position, users in enumerate(distinct):
        ancillary = getattr(members[users[0]][0], attribute)
        if len(users) == 1:
            pair = _write_ancillary(members[users[0]][1], kind, ancillary, compression=compression)
        else:
            pair = _write_ancillary(group, kind, ancillary, f"_{position:03d}" if position else "", compression)
        for number in users:
            written[number] = pair
    return written


def write_file(datasets: Sequence[Dataset], path: Path, compression: str | None = "none", views: Sequence[tuple[str, tuple[int, ...]]] | None = None) -> None:
    """Write datasets as /Measurement_NNN/Channel_NNN; same positions → same measurement.

    `views` (one per dataset, in the order given) makes each Main dataset a view of an N-D dataset
    the caller writes afterwards (`create_main`).
    """
    view_of = {id(dataset): view for dataset, view in zip(datasets, views)} if views is not None else {}
    measurements = group_by_positions(datasets)
    with new_hdf5(path) as file:
        root_attributes: dict[str, Any] = {}
        for dataset in reversed(datasets):
            root_attributes.update(_layout(dataset, "file"))
        stamp(file, root_attributes)
        for number, members in enumerate(measurements):
            measurement = file.create_group(f"Measurement_{number:03d}")
            stamp(measurement, _layout(members[0], "measurement"))
            channels = []
            for channel_number, dataset in enumerate(members):
                channel = measurement.create_group(f"Channel_{channel_number:03d}")
                stamp(channel, _layout(dataset, "channel"))
                extra = {key: value for key, value in dataset.metadata.items() if key != LAYOUT_KEY}
                if extra:
                    write_tree(channel.create_group(METADATA_GROUP), extra)
                channels.append((dataset, channel))
            mains = [create_main(channel, dataset, compression, view_of.get(id(dataset))) for dataset, channel in channels]
            positions = _shared(measurement, "Position", channels, "pos", compression)
            spectra = _shared(measurement, "Spectroscopic", channels, "spec", compression)
            for index, main in enumerate(mains):
                link_main(main, channels[index][0], positions[index], spectra[index])


def _source_path(source: str | Dataset, path: str | Path) -> str:
    """The HDF5 path of a source Main dataset: given as such, or a Dataset read from this file."""
    if not isinstance(source, Dataset):
        return source
    origin, separator, inside = (source.source or "").rpartition("::")
    if not separator:
        raise ModelError(f"dataset {source.name!r} was not read from an HDF5 file (its source is {source.source!r}); give the HDF5 path of its Main dataset")
    if Path(origin).resolve() != Path(path).resolve():
        raise ModelError(f"dataset {source.name!r} was read from {origin}, not from {path}")
    return inside


def add_results(
    path: str | Path,
    sources: str | Dataset | Sequence[str | Dataset],
    tool: str,
    datasets: Dataset | Sequence[Dataset],
    parameters: Mapping[str, Any] | None = None,
    compression: str | None = "none",
) -> str:
    """Add a results group ``<Source>-<Tool>_NNN`` beside the (first) source Main dataset: how a
    fit, a filter or a decomposition is saved beside its measurement, as pyUSID does.

    `sources` are the Main datasets the results derive from: Datasets read from this file
    (``ub.read(path)``), or their HDF5 paths. The group carries ``source_000``, ... references,
    ``tool``, ``num_sources``, the processing `parameters` as attributes, and one Main dataset per
    derived dataset; a derived dataset whose positions or spectra equal the first source's links
    its ancillary datasets, else writes its own. Returns the HDF5 path of the new group. On
    failure the partial group is removed.
    """
    sources = [_source_path(source, path) for source in ([sources] if isinstance(sources, (str, Dataset)) else sources)]
    datasets = [datasets] if isinstance(datasets, Dataset) else list(datasets)
    try:
        opened = h5py.File(path, "r+", libver=LIBVER)
    except OSError as error:
        if "already open for read-only" in str(error):
            raise WriteError("the file is still open for reading in this process (a lazy read of it): read it with lazy=False, then add the results", path) from None
        raise WriteError(f"cannot open the file to add results: {error}", path) from None
    with failed_write(path), opened as file:
        missing = [source for source in sources if not isinstance(file.get(source), h5py.Dataset)]
        if missing or not sources:
            raise ModelError(f"no Main dataset at {missing or 'no source given'} in {path}")
        source_mains = [file[source] for source in sources]
        first = source_mains[0]
        source_tables = _tables(first, file)
        source_pos = read_ancillary(source_tables["Position_Indices"], source_tables["Position_Values"], False, str(path))
        source_spec = read_ancillary(source_tables["Spectroscopic_Indices"], source_tables["Spectroscopic_Values"], True, str(path))
        stem = f"{first.name.rsplit('/', 1)[-1]}-{tool}_"
        number = sum(1 for name in first.parent if name.startswith(stem))
        group = first.parent.create_group(f"{stem}{number:03d}")
        try:
            for index, source in enumerate(source_mains):
                group.attrs[f"source_{index:03d}"] = source.ref
            stamp(group, {"tool": tool, "num_sources": len(source_mains), **(parameters or {})})
            for dataset in datasets:
                main = create_main(group, dataset, compression)
                suffix = f"_{main.name.rsplit('/', 1)[-1]}"
                if dataset.pos.same_as(source_pos):
                    position = (source_tables["Position_Indices"], source_tables["Position_Values"])
                else:
                    position = _write_ancillary(group, "Position", dataset.pos, suffix, compression)
                if dataset.spec.same_as(source_spec):
                    spectroscopic = (source_tables["Spectroscopic_Indices"], source_tables["Spectroscopic_Values"])
                else:
                    spectroscopic = _write_ancillary(group, "Spectroscopic", dataset.spec, suffix, compression)
                link_main(main, dataset, position, spectroscopic)
        except BaseException:
            del first.parent[group.name.rsplit("/", 1)[-1]]
            raise
        return group.name


class H5USIDFormat(Format):
    name = "h5usid"
    description = "USID in HDF5 (pyUSID, pycroscopy)"
    extensions = (".h5", ".hdf5", ".h5usid", ".hdf")
    profile = Profile()
    write_options = {"compression": COMPRESSION_HELP}

    def sniff(self, head: bytes, path: Path) -> int:
        if not has_hdf5_signature(head):
            return 0
        with sniffed(path) as file:
            return 2 if holds_marked(file, h5py.Dataset, ["Position_Indices"]) else 0  # other HDF5 files are the plain hdf5 format's

    def read(self, path: Path, *, lazy: bool = False) -> list[Dataset]:
        file = open_hdf5(path)
        datasets, problems = [], []
        try:
            with damaged_hdf5(path):
                candidates = main_candidates(file)
            for candidate in candidates:
                try:
                    with damaged_hdf5(path):
                        datasets.append(read_main(candidate, lazy))
                except (ModelError, UnreadableFileError) as error:
                    problems.append(error.message)
        finally:
            if not lazy:
                file.close()
        if not datasets:
            if lazy:
                file.close()
            detail = problems[0] if problems else "no dataset carries Position_Indices / Spectroscopic_Indices references"
            raise NotUSIDError(f"no usable USID Main dataset ({detail}); `usidbridge validate` lists every problem", path)
        for problem in problems:
            warnings.warn(f"{path}: skipped {problem}", stacklevel=2)
        return datasets

    def write(self, datasets: Sequence[Dataset], path: Path, compression: str | None = "none", views: Sequence[tuple[str, tuple[int, ...]]] | None = None) -> None:
        """`views` is for writers of dual files (NeXus), not a user option: see `write_file`."""
        write_file(datasets, path, compression=compression, views=views)


FORMAT = H5USIDFormat()
