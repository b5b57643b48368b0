"""NetCDF and xarray: `to_xarray` / `from_xarray`, .nc files (netCDF4 or h5netcdf), and the xarray engine "usid".

Mapping between xarray and the model:

==================================================  ==========================================
xarray                                              `Dataset`
==================================================  ==========================================
DataArray (N-D), ``name``                           data; ``quantity`` (also attr ``quantity``)
dims and their coordinates (``units``,              position and spectroscopic dims (names,
``long_name``)                                      units, values)
attr ``usid_spectroscopic`` (JSON list, ours)       which dims are spectroscopic. Without it:
                                                    the last dim when there are three or more,
                                                    else none; ``spectroscopic=`` overrides
dim ``position`` + one coordinate per label and     non-grid positions (attr ``usid_non_grid``
``<label>_index``                                   lists the labels)
attrs ``units``, ``usid_metadata`` (tagged JSON)    units, metadata (`codec.tagged`); other attrs go to
                                                    ``metadata["netcdf"]``
``<name>_real`` / ``<name>_imag`` (``usid_complex``) complex data (netCDF has no complex type)
one variable per field (``usid_compound``)          compound data, reassembled from the fields
==================================================  ==========================================

A spectroscopic dim whose name is also a position dim is renamed ``<name>_spectroscopic`` in
xarray (dims must be unique there) and keeps its name in the coordinate attr ``usid_name``.
Files are read as xarray decodes them (CF scaling, masking, times). A netCDF-4 file in which xarray would decode
nothing is read with h5netcdf and h5py alone, to the same Datasets without importing xarray and pandas.
The xarray engine ``usid`` (``xr.open_dataset("file.h5", engine="usid")``) opens h5USID files
lazily: only the ancillary datasets are read at open, the Main data stays in the file (dask).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import unicodedata
import warnings
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from usidbridge import progress, registry
from usidbridge.codec import load_json, plain, tagged, untagged
from usidbridge.errors import ModelError, UnreadableFileError, UnsupportedFeatureError, silenced
from usidbridge.hdf import attached_scales, damaged_hdf5, has_hdf5_signature, link_cycle, require_backed, sniffed
from usidbridge.lazy import LAZY_BLOCK_BYTES, FileArray, NDRows, OrderedRows
from usidbridge.model import Ancillary, Dataset, Dimension, describe_placeholders, from_labelled, placeholder_axes, restore_placeholders
from usidbridge.registry import Format, Profile

SPECTROSCOPIC = "usid_spectroscopic"
NON_GRID = "usid_non_grid"
METADATA = "usid_metadata"
COMPLEX = "usid_complex"
COMPOUND = "usid_compound"
PLACEHOLDERS = "usid_placeholders"
ORIGINAL_NAME = "usid_name"
POSITION = "position"
NETCDF3_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05")
OURS = {SPECTROSCOPIC, NON_GRID, METADATA, COMPLEX, COMPOUND, PLACEHOLDERS, "quantity", "units", "long_name"}


def _nd_shape(dataset: Dataset) -> tuple[int, ...]:
    return dataset.nd_shape if dataset.is_grid else (dataset.pos.size, *_spectral_shape(dataset))


def _lazy_nd(dataset: Dataset, indexable: bool = False) -> Any:
    """The N-D data without reading it: numpy views stay views; data in a file becomes dask, or with
    `indexable` xarray's lazily indexed array (what xarray backends hand over, so that ``.load()`` loads)."""
    if indexable and dataset.is_lazy and not hasattr(dataset.data, "compute"):
        from xarray.core import indexing

        rows = NDRows(dataset.data, _nd_shape(dataset), dataset.pos.shape if dataset.pos.is_grid else (dataset.pos.size,))
        return indexing.LazilyIndexedArray(_backend_array_class()(rows))
    if dataset.is_grid:
        return dataset.lazy_nd()
    return dataset.lazy_data.reshape(_nd_shape(dataset))


def _backend_array_class() -> type:
    """xarray's BackendArray over `NDRows`, built on first use (importing this module does not import xarray)."""
    from xarray.backends import BackendArray
    from xarray.core import indexing

    class UsidBackendArray(BackendArray):
        """Basic N-D indexing of USID data: one read of whole rows per request (`usidbridge.lazy.NDRows`)."""

        def __init__(self, rows: NDRows) -> None:
            self.rows, self.shape, self.dtype = rows, rows.shape, rows.dtype

        def __getitem__(self, key: Any) -> np.ndarray:
            return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self.rows.__getitem__)

    return UsidBackendArray


def _spectral_shape(dataset: Dataset) -> tuple[int, ...]:
    return dataset.spec.shape if dataset.spec.is_grid else (dataset.spec.size,)


def _coordinate(dim: Dimension, xarray_name: str) -> Any:
    import xarray

    attrs = {"units": dim.units, "long_name": dim.name, ORIGINAL_NAME: dim.name}
    return xarray.Variable((xarray_name,), dim.values, attrs=attrs)


def to_xarray(dataset: Dataset, indexable: bool = False) -> Any:
    """The dataset as an xarray DataArray (lazy for h5py or dask data); dims named by their labels.

    Data in a file is dask, or with `indexable` a lazily indexed array, as xarray's backends give it.
    """
    import xarray

    if not dataset.spec.is_grid:
        raise UnsupportedFeatureError(f"{dataset.quantity}: xarray needs a grid of spectroscopic dims; this one changes mid-run (h5usid keeps it)")
    taken: set[str] = set()
    position_names = _unique([_safe(label) for label in dataset.pos.labels], taken) if dataset.pos.is_grid else _unique([POSITION], taken)
    spectral_names = _unique([_safe(label) if _safe(label) not in taken else f"{_safe(label)}_spectroscopic" for label in dataset.spec.labels], taken)
    coords: dict[str, Any] = {}
    for dim, name in zip(dataset.spec.dims, spectral_names):
        coords[name] = _coordinate(dim, name)
    attrs: dict[str, Any] = {
        "quantity": dataset.quantity,
        "long_name": dataset.quantity,
        "units": dataset.units,
        SPECTROSCOPIC: json.dumps(spectral_names),
        METADATA: json.dumps(tagged({key: value for key, value in dataset.metadata.items() if key != "netcdf"})),
    }
    if dataset.pos.is_grid:
        for dim, name in zip(dataset.pos.dims, position_names):
            coords[name] = _coordinate(dim, name)
    else:
        names = _unique([_safe(label) for label in dataset.pos.labels], taken)
        for column, (label, name, unit) in enumerate(zip(dataset.pos.labels, names, dataset.pos.units)):
            coords[name] = xarray.Variable((POSITION,), dataset.pos.values[:, column], attrs={"units": unit, "long_name": label, ORIGINAL_NAME: label})
            coords[f"{name}_index"] = xarray.Variable((POSITION,), dataset.pos.indices[:, column])
        attrs[NON_GRID] = json.dumps(names)
    variable = xarray.Variable(position_names + spectral_names, _lazy_nd(dataset, indexable), attrs=attrs)
    placeholders = placeholder_axes(dataset) if dataset.pos.is_grid else []
    if placeholders:  # USID's size-1 placeholders are not dims to xarray: an image stays 2-D, a spectrum 1-D
        dropped = [(position_names + spectral_names)[axis] for axis in placeholders]
        variable = variable.isel({name: 0 for name in dropped})
        variable.attrs[PLACEHOLDERS] = json.dumps(describe_placeholders(dataset, placeholders))
        variable.attrs[SPECTROSCOPIC] = json.dumps([name for name in spectral_names if name not in dropped])
        coords = {name: coordinate for name, coordinate in coords.items() if name not in dropped}
    return xarray.DataArray(variable, coords=coords, name=_safe(variable_name(dataset)))


def variable_name(dataset: Dataset) -> str:
    """The name a dataset goes by in xarray: its own (``Z forward``), unless it is pyUSID's generic
    ``Raw_Data``; then its quantity (``Current``)."""
    return dataset.quantity if dataset.name in ("", "Raw_Data") else dataset.name


def _unique(names: list[str], taken: set[str]) -> list[str]:
    """`names` made distinct from each other and from `taken` (which they join) by trailing underscores."""
    result = []
    for name in names:
        while name in taken or f"{name}_index" in taken:
            name += "_"
        taken.update((name, f"{name}_index"))
        result.append(name)
    return result


SAFE_NAME_BYTES = 240  # netCDF's NC_MAX_NAME is 256 bytes; the rest is room for "_index" and "_" to keep names unique


def _safe(name: str) -> str:
    """A netCDF-legal variable or dim name (the original is kept in attributes).

    netCDF names are NFC-normalised UTF-8 of at most 256 bytes, cannot hold '/' or control
    characters and start with a letter, an underscore or a multi-byte character; CF lists
    coordinates separated by spaces, so white space goes too.
    """
    normal = unicodedata.normalize("NFC", name)
    safe = "".join("_" if character == "/" or character.isspace() or unicodedata.category(character) == "Cc" else character for character in normal)
    if not safe or not (safe[0].isalpha() or safe[0] == "_" or ord(safe[0]) > 127):
        safe = "_" + safe
    return safe.encode("utf-8")[:SAFE_NAME_BYTES].decode("utf-8", errors="ignore")


def _ours(attrs: Any, key: str, kind: type, length: int | None = None) -> Any:
    """The JSON value of one of our attributes, checked: a damaged one is a `ModelError`, not a crash."""
    value = load_json(attrs[key], f"the attribute {key!r} (written by usidbridge)")
    if not isinstance(value, kind) or (length is not None and len(value) != length):
        raise ModelError(f"the attribute {key!r} holds {type(value).__name__} {str(value)[:40]!r}, not what usidbridge writes there")
    return value


def _dims_of(array: Any) -> list[Dimension]:
    dims = []
    for axis, name in enumerate(array.dims):
        values, units, label = np.arange(array.shape[axis], dtype=np.float64), "", str(name)
        if name in array.coords and array.coords[name].ndim == 1 and np.dtype(array.coords[name].dtype).kind in "biuf":
            coordinate = array.coords[name]
            values, units = np.asarray(coordinate.values, dtype=np.float64), str(coordinate.attrs.get("units", ""))
            label = str(coordinate.attrs.get(ORIGINAL_NAME, name))
        dims.append(Dimension(label, units, values))
    return dims


def _spectroscopic_axes(array: Any, override: Sequence[str] | int | None) -> list[int]:
    names = [str(name) for name in array.dims]
    if isinstance(override, int):
        return list(range(len(names) - override, len(names))) if override else []
    if override is not None:
        return [axis for axis, name in enumerate(names) if name in override]
    if SPECTROSCOPIC in array.attrs:
        chosen = _ours(array.attrs, SPECTROSCOPIC, list)
        return [axis for axis, name in enumerate(names) if name in chosen]
    return [len(names) - 1] if len(names) >= 3 else []


def from_dataarray(array: Any, spectroscopic: Sequence[str] | int | None = None, source: str | None = None, data: Any = None) -> Dataset:
    """One Dataset from a DataArray (lazy stays lazy); see the module text for the dims rule.

    `data`, when given, is the array's values read another way (its variable in the file, as it is stored).
    """
    attrs = dict(array.attrs)
    quantity = str(attrs.get("quantity", attrs.get("long_name", array.name if array.name is not None else "data")))
    metadata = untagged(_ours(attrs, METADATA, dict)) if METADATA in attrs else {}
    foreign = {key: plain(value) for key, value in attrs.items() if key not in OURS}
    if foreign:
        metadata["netcdf"] = foreign
    attributes = {"quantity": quantity, "units": str(attrs.get("units", "")), "metadata": metadata, "source": source}
    data = array.data if data is None else data
    if NON_GRID in attrs:
        names = _ours(attrs, NON_GRID, list)
        missing = [name for name in names if not isinstance(name, str) or name not in array.coords or f"{name}_index" not in array.coords]
        if not names or missing:
            raise ModelError(f"variable {array.name!r}: its {NON_GRID} attribute names position columns {names!r:.80}, and {missing!r:.80} are not coordinates with their _index")
        labels = [str(array.coords[name].attrs.get(ORIGINAL_NAME, name)) for name in names]
        units = [str(array.coords[name].attrs.get("units", "")) for name in names]
        pos = Ancillary.from_table(
            labels, units, np.stack([array.coords[f"{name}_index"].values for name in names], axis=1), np.stack([array.coords[name].values for name in names], axis=1)
        )
        spec_dims = _dims_of(array)[1:]
        spec = Ancillary(spec_dims or [Dimension("arb", "a.u.", [0.0])])
        return Dataset(data.reshape(pos.size, spec.size), pos, spec, **attributes)
    if array.ndim == 0:
        dataset = Dataset.from_ndarray(data.reshape(1), [Dimension("arb", "a.u.", [0.0])], **attributes)
    else:
        dataset = from_labelled(data, _dims_of(array), _spectroscopic_axes(array, spectroscopic), **attributes)
    return restore_placeholders(dataset, _ours(attrs, PLACEHOLDERS, list) if PLACEHOLDERS in attrs else [])


def from_xarray(obj: Any, spectroscopic: Sequence[str] | int | None = None, source: str | None = None, stored: Mapping[str, Any] | None = None) -> list[Dataset]:
    """Datasets from a DataArray, or from every data variable (with at least one dim) of an xarray Dataset.

    `stored` gives, by name, variables to read from the file as they are stored (see `_direct_variables`).
    """
    import xarray

    if isinstance(obj, xarray.DataArray):
        return [from_dataarray(obj, spectroscopic, source)]
    decoded, stored = _decode(obj), stored or {}
    return [
        from_dataarray(decoded[name], spectroscopic, f"{source}::{name}" if source else str(name), stored.get(str(name)))
        for name in decoded.data_vars
        if decoded[name].ndim >= 1
    ]


def _encode(dataset: Any) -> Any:
    """Complex and compound variables as real variables netCDF can store, with the attribute that reverses it."""
    import xarray

    variables = {}
    for name, variable in dataset.data_vars.items():
        dtype = np.dtype(variable.dtype)
        if dtype.kind == "c":
            for part in ("real", "imag"):
                variables[f"{name}_{part}"] = xarray.DataArray(getattr(variable, part), attrs={**variable.attrs, COMPLEX: f"{name}:{part}"})
        elif dtype.fields:
            for field in dtype.names:
                values = variable.data[field] if hasattr(variable.data, "__getitem__") else np.asarray(variable)[field]
                variables[f"{name}_{field}"] = xarray.DataArray(values, dims=variable.dims, coords=variable.coords, attrs={**variable.attrs, COMPOUND: json.dumps([name, field, dtype.descr])})
        else:
            variables[name] = variable
    return xarray.Dataset(variables, attrs=dataset.attrs)


def _decode(dataset: Any) -> Any:
    """The inverse of `_encode`."""
    import xarray

    variables: dict[str, Any] = {}
    parts: dict[str, dict[str, Any]] = {}
    fields: dict[str, tuple[list, dict[str, Any], Any]] = {}
    for name, variable in dataset.data_vars.items():
        if COMPLEX in variable.attrs:
            target, _, part = str(variable.attrs[COMPLEX]).rpartition(":")
            if part not in ("real", "imag") or not target:
                raise ModelError(f"variable {name!r}: its {COMPLEX} attribute is {str(variable.attrs[COMPLEX])[:60]!r}, not NAME:real or NAME:imag")
            parts.setdefault(target, {})[part] = variable
        elif COMPOUND in variable.attrs:
            target, field, descr = _ours(variable.attrs, COMPOUND, list, length=3)
            if not isinstance(descr, list) or not all(isinstance(item, list) and len(item) == 2 and all(isinstance(text, str) for text in item) for item in descr):
                raise ModelError(f"variable {name!r}: its {COMPOUND} attribute does not describe the fields of a compound type")
            fields.setdefault(str(target), ([tuple(item) for item in descr], {}, variable))[1][str(field)] = variable
        else:
            variables[name] = variable
    for target, pair in parts.items():
        if set(pair) != {"real", "imag"} or pair["real"].shape != pair["imag"].shape:
            raise ModelError(f"complex variable {target!r}: its real and imaginary parts ({', '.join(f'{part} {pair[part].shape}' for part in sorted(pair))}) do not pair up")
        attrs = {key: value for key, value in pair["real"].attrs.items() if key != COMPLEX}
        real, imag = np.asarray(pair["real"].data), np.asarray(pair["imag"].data)
        combined = np.empty(real.shape, dtype=np.result_type(real.dtype, np.complex64))
        combined.real, combined.imag = real, imag  # bitwise: real + 1j * imag turns inf into nan
        variables[target] = xarray.DataArray(combined, dims=pair["real"].dims, coords=pair["real"].coords, attrs=attrs)
    for target, (descr, members, first) in fields.items():
        try:
            dtype = np.dtype([(name, np.dtype(kind)) for name, kind in descr])
        except (TypeError, ValueError) as error:
            raise ModelError(f"compound variable {target!r}: its fields {descr!r:.80} are not a numpy type ({error})") from None
        if set(members) != set(dtype.names) or any(member.shape != first.shape for member in members.values()):
            raise ModelError(f"compound variable {target!r}: the stored fields {sorted(members)} do not match its type's {list(dtype.names)}")
        combined = np.empty(first.shape, dtype=dtype)
        for field in dtype.names:
            combined[field] = np.asarray(members[field])
        attrs = {key: value for key, value in first.attrs.items() if key != COMPOUND}
        variables[target] = xarray.DataArray(combined, dims=first.dims, coords=first.coords, attrs=attrs)
    return xarray.Dataset(variables, attrs=dataset.attrs)


def to_xarray_dataset(datasets: Sequence[Dataset], indexable: bool = False) -> Any:
    """Several datasets as one xarray Dataset; dims whose coordinates disagree get a suffix per variable."""
    import xarray

    arrays, taken = [], set()
    for dataset in datasets:
        array = to_xarray(dataset, indexable)
        name, number = str(array.name), 1
        while name in taken or name in array.dims or name in array.coords:
            name, number = f"{array.name}_{number}", number + 1
        taken.add(name)
        arrays.append(array.rename(name) if name != array.name else array)
    if len(arrays) == 1:  # nothing to merge: a third of the cost of opening one dataset
        return arrays[0].to_dataset()
    combined = xarray.Dataset()
    for number, array in enumerate(arrays):
        clashes = {dim: f"{dim}_{number}" for dim in array.dims if dim in combined.dims and not (dim in combined.coords and dim in array.coords and combined[dim].equals(array[dim]))}
        for coord in list(array.coords):
            if coord not in array.dims and coord in combined.coords and not combined[coord].equals(array[coord]):
                clashes.setdefault(coord, f"{coord}_{number}")
        if clashes:
            array = array.rename(clashes)
        combined[array.name] = array
    return combined


def write_file(datasets: Sequence[Dataset], path: Path, engine: str = "netcdf4", compression: str | None = None) -> None:
    if engine not in ("netcdf4", "h5netcdf"):
        raise UnsupportedFeatureError(f"unknown netCDF engine {engine!r}; use netcdf4 or h5netcdf")
    if compression not in (None, "none", "gzip"):
        raise UnsupportedFeatureError(f"netCDF compresses with gzip (zlib) only, not {compression!r}: other readers could not open the file")
    encoded = _encode(to_xarray_dataset([_c_ordered(dataset) for dataset in datasets]))
    encoding = {name: {"zlib": True, "complevel": 4} for name in encoded.data_vars if encoded[name].ndim} if compression == "gzip" else None
    with warnings.catch_warnings():  # xarray's notice about big-endian input, which it converts as it should
        warnings.filterwarnings("ignore", "endian-ness of dtype and endian kwarg do not match", UserWarning)
        with progress.dask_tasks():
            encoded.to_netcdf(path, engine=engine, encoding=encoding)


def _c_ordered(dataset: Dataset) -> Dataset:
    """`dataset`, its data read by rows in C order when it is a column-major array (see `OrderedRows`)."""
    if not isinstance(dataset.data, np.ndarray) or dataset.data.flags.c_contiguous:
        return dataset
    ordered = copy.copy(dataset)
    ordered.data = OrderedRows(dataset.data)
    return ordered


def _refuse_link_cycles(path: Path) -> None:
    """netCDF-C loops or crashes on an HDF5 link cycle, an external link to the file itself, or a dimension-scale
    reference to the wrong object: find them with h5py first and say so."""
    import h5py

    with open(path, "rb") as handle:
        if not has_hdf5_signature(handle.read(2056)):
            return
    with damaged_hdf5(path, "netCDF"), h5py.File(path, "r") as file:
        cycle = link_cycle(file)
        external = file.visititems_links(lambda name, link: name if isinstance(link, h5py.ExternalLink) else None)
        scales = file.visititems(lambda name, obj: attached_scales(obj)[2] if isinstance(obj, h5py.Dataset) else None)
    if cycle:
        raise UnreadableFileError(f"the HDF5 link {cycle} points back to a group above it (a link cycle); netCDF readers cannot read such a file", path)
    if scales:
        raise UnreadableFileError(f"{scales}; netCDF readers crash on such a file", path)
    if external:
        raise UnreadableFileError(f"the HDF5 link /{external} is an external link; netCDF files hold none, and usidbridge does not follow them", path)


def _in_row_blocks(opened: Any, skip: Collection[str] = ()) -> Any:
    """Every data variable (but those in `skip`) as dask in blocks of whole slabs of its slowest dim, about `LAZY_BLOCK_BYTES` each.

    These are the blocks of positions the writers copy, so each is read from the file once. xarray's
    own ``chunks={}`` takes the file's chunking, which is one chunk for contiguous variables: every
    block copied would then read the whole variable again.
    """
    for name in list(opened.data_vars):
        variable = opened[name]
        if variable.ndim and str(name) not in skip:
            row_bytes = max(1, int(np.prod(variable.shape[1:])) * variable.dtype.itemsize)
            opened[name] = variable.chunk({variable.dims[0]: max(1, LAZY_BLOCK_BYTES // row_bytes), **{dim: -1 for dim in variable.dims[1:]}})
    return opened


# What xarray's open_dataset raises for a file it cannot open or decode: netCDF-C's and h5py's OSError and
# RuntimeError, ValueError when no engine recognises the file or a CF attribute cannot be decoded, and
# what Python raises on the damaged values the engines pass on.
XARRAY_FAILURES = (OSError, RuntimeError, ValueError, KeyError, IndexError, TypeError, AttributeError, UnicodeDecodeError, OverflowError, NotImplementedError)
# Attributes xarray decodes (CF masking and scaling, times, strings, booleans, coordinates) or we do (`_decode`, non-grid
# positions): a variable with none of them, of a number type and without a fill value other than a float NaN, is given
# by xarray exactly as the file stores it.
DECODED_ATTRIBUTES = (
    *("scale_factor", "add_offset", "missing_value", "valid_min", "valid_max", "valid_range", "_Unsigned", "_Encoding", "dtype", "calendar", "coordinates"),
    *(COMPLEX, COMPOUND, NON_GRID),
)
TIME_UNITS = frozenset({"days", "hours", "minutes", "seconds", "milliseconds", "microseconds", "nanoseconds"})
# What h5netcdf raises for HDF5 files it will not list as netCDF-4 (phony dims, odd attribute types, damage): xarray then
# reads them with netCDF-C, which is more lenient, or says why it cannot.
H5NETCDF_FAILURES = (OSError, RuntimeError, ValueError, KeyError, TypeError, IndexError, UnicodeError)


class _Variable:
    """A netCDF-4 variable as h5netcdf lists it, with what `from_dataarray` reads of an xarray DataArray:
    ``name``, ``dims``, ``attrs``, ``shape``, ``data`` (its h5py dataset) and the ``coords`` of its dims."""

    def __init__(self, name: str, listed: Any, data: Any) -> None:
        self.name, self.dims, self.shape, self.dtype, self.data = name, tuple(listed.dimensions), tuple(data.shape), data.dtype, data
        self.ndim = len(self.shape)
        self.attrs = {key: _as_netcdf_c(value) for key, value in listed.attrs.items() if key != "_FillValue"}  # xarray moves the fill to the encoding
        self.stored_as_read = _stored_as_read(self.dtype, listed.attrs)
        self.coords: dict[str, _Variable] = {}

    @property
    def values(self) -> np.ndarray:
        return np.asarray(self.data[()])


def _as_netcdf_c(value: Any) -> Any:
    """An attribute value as netCDF-C gives it to xarray: h5netcdf leaves text of one character, and empty text, as bytes.
    (Text with a NUL byte inside ends at the NUL, as HDF5 reads it; netCDF-C drops the NUL and keeps the rest.)"""
    return value.decode("utf-8", errors="replace").replace("\x00", "") if isinstance(value, bytes) else value


def _stored_as_read(dtype: Any, attrs: Mapping[str, Any]) -> bool:
    """Whether xarray gives a variable of this type and these attributes exactly as the file stores it (`DECODED_ATTRIBUTES`)."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in "iuf" or any(key in attrs for key in DECODED_ATTRIBUTES):
        return False
    units = attrs.get("units")
    if isinstance(units, str) and ("since" in units or units.strip() in TIME_UNITS):
        return False
    fill = np.asarray(attrs.get("_FillValue", np.nan))
    return dtype.kind == "f" and fill.dtype.kind == "f" and fill.size == 1 and bool(np.isnan(fill).all()) if "_FillValue" in attrs else True


def _listed_variables(path: Path) -> tuple[Any, dict[str, _Variable]] | None:
    """The open h5py file and the root variables of a netCDF-4 file, as h5netcdf lists them (none for netCDF-3,
    or when h5netcdf will not list the file): read without xarray, pandas or netCDF-C."""
    import h5netcdf
    import h5py

    with open(path, "rb") as handle:
        if not has_hdf5_signature(handle.read(2048)):
            return None
    file = h5py.File(path, "r")
    try:
        listing = h5netcdf.File(file, "r")
        variables = {str(name): _Variable(str(name), listed, file[str(name)]) for name, listed in listing.variables.items()}
    except H5NETCDF_FAILURES:
        file.close()
        return None
    for variable in variables.values():
        variable.coords = {dim: variables[dim] for dim in variable.dims if dim in variables and variables[dim].dims == (dim,)}
    return file, variables


def _without_xarray(variables: Mapping[str, _Variable]) -> bool:
    """Whether every variable is `stored_as_read` and every variable named like a dim is that dim's coordinate:
    then the Datasets are what `from_xarray` makes of the file, built without xarray."""
    dims = {dim for variable in variables.values() for dim in variable.dims}
    return all(variable.stored_as_read and (name not in dims or variable.dims == (name,)) for name, variable in variables.items())


def _direct(variable: _Variable, spectroscopic: Sequence[str] | int | None) -> bool:
    """Whether a lazy read takes this variable from its HDF5 dataset in blocks of rows (`usidbridge.lazy.FlatRows`),
    no dask, no netCDF-C: stored as read, not a scalar, and its spectroscopic dims last (no axes to move)."""
    spectral = _spectroscopic_axes(variable, spectroscopic)
    return variable.stored_as_read and variable.ndim > 0 and spectral == list(range(variable.ndim - len(spectral), variable.ndim))


def read_file(path: Path, lazy: bool = False, engine: str | None = None, spectroscopic: Sequence[str] | int | None = None) -> list[Dataset]:
    """The data variables of a netCDF file. A netCDF-4 file whose variables xarray would give as stored
    (`_without_xarray`) is read with h5netcdf and h5py alone: importing xarray and pandas costs a fresh
    process 0.4 s. Other files, and any given `engine`, go through xarray's decoding."""
    _refuse_link_cycles(path)
    with damaged_hdf5(path, "netCDF"):
        file, variables = _listed_variables(path) or (None, {})
    reads_file = False
    try:
        with damaged_hdf5(path, "netCDF"):
            if engine is None and variables and _without_xarray(variables):
                datasets, reads_file = _read_listed(path, variables, lazy, spectroscopic), lazy
            else:
                datasets, reads_file = _read_by_xarray(path, variables, lazy, engine, spectroscopic)
    except ModelError as error:
        raise UnreadableFileError(error.message, path) from None
    finally:
        if file is not None and not reads_file:
            file.close()
    if not datasets:
        raise UnreadableFileError("no data variable with a dimension in this netCDF file", path)
    return datasets


def _read_listed(path: Path, variables: Mapping[str, _Variable], lazy: bool, spectroscopic: Sequence[str] | int | None) -> list[Dataset]:
    """What `from_xarray` makes of the file, from h5netcdf's listing (see `_without_xarray`): the data
    variables (not a dim's coordinate, not a scalar) in the file's order."""
    datasets = []
    for name, variable in variables.items():
        if variable.ndim and variable.dims != (name,):
            data = FileArray(require_backed(variable.data, path))
            datasets.append(from_dataarray(variable, spectroscopic, f"{path}::{name}", data if lazy else data[()]))
    return datasets


def _read_by_xarray(path: Path, variables: Mapping[str, _Variable], lazy: bool, engine: str | None, spectroscopic: Sequence[str] | int | None) -> tuple[list[Dataset], bool]:
    """The Datasets of the file opened by xarray, and whether they read from the open h5py file: lazily, the
    variables in `variables` that are `_direct` are read from it, the others by dask through xarray."""
    import xarray

    try:
        with silenced("h5py"):
            opened = xarray.open_dataset(path, engine=engine, create_default_indexes=False)  # coordinates are read as values: no pandas indexes (nor pint, which building them imports)
    except XARRAY_FAILURES as error:
        raise UnreadableFileError(f"not a netCDF file xarray can open ({type(error).__name__}: {error})", path) from None
    stored = {}
    if lazy:
        direct = [name for name, variable in variables.items() if name in opened.data_vars and opened[name].shape == variable.shape and _direct(variable, spectroscopic)]
        stored = {name: FileArray(require_backed(variables[name].data, path)) for name in direct}
        opened = _in_row_blocks(opened, skip=stored)
    else:
        opened = opened.load()
        opened.close()
    return from_xarray(opened, spectroscopic, source=str(path), stored=stored), bool(stored)


def touch_netcdf(path: str) -> int:
    """Open the file with netCDF-C (as xarray's default engine will) and read every group's,
    variable's and dimension's header and attributes; returns how many it touched. Run in a child
    first: netCDF-C aborts the process on some damaged attributes (found by fuzzing). Without the
    netCDF4 package xarray does not use netCDF-C, and there is nothing to probe; nor when the file
    has a link cycle or an external link, which the reader refuses before netCDF-C sees it (netCDF-C
    loops on a cycle: the probe would wait out its timeout)."""
    if importlib.util.find_spec("netCDF4") is None:
        return 0
    try:
        _refuse_link_cycles(Path(path))
    except UnreadableFileError:
        return 0
    import netCDF4

    count = 0
    try:
        with netCDF4.Dataset(path) as root:
            groups = [root]
            while groups:
                group = groups.pop()
                for item in [group, *group.variables.values()]:
                    for name in item.ncattrs():
                        item.getncattr(name)
                    count += 1
                list(group.dimensions.items())
                groups.extend(group.groups.values())
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, UnicodeError, AttributeError):
        pass  # errors netCDF4 reports: the reader says what they mean
    return count


class NetcdfFormat(Format):
    name = "netcdf"
    description = "NetCDF 3/4 through xarray (netCDF4, h5netcdf)"
    extensions = (".nc", ".nc4", ".cdf", ".netcdf")
    dependency = "xarray"
    extra = "netcdf"
    structure_probe = staticmethod(touch_netcdf)
    profile = Profile(complex="encodes", compound="encodes", non_grid="encodes", nested_metadata="encodes")
    read_options = {
        "engine": "xarray engine: netcdf4, h5netcdf or scipy (default: xarray's choice)",
        "spectroscopic": "which dims are spectroscopic: a list of dim names, or a count of trailing dims",
    }
    write_options = {"engine": "netcdf4 (default) or h5netcdf", "compression": "gzip (zlib) or none; netCDF has no lzf"}

    def sniff(self, head: bytes, path: Path) -> int:
        if head[:4] in NETCDF3_MAGIC:
            return 2
        if not has_hdf5_signature(head):
            return 0
        with sniffed(path) as file:
            return 2 if "_NCProperties" in file.attrs else 0

    def read(self, path: Path, *, lazy: bool = False, engine: str | None = None, spectroscopic: Sequence[str] | int | None = None) -> list[Dataset]:
        return read_file(path, lazy=lazy, engine=engine, spectroscopic=spectroscopic)

    def write(self, datasets: Sequence[Dataset], path: Path, engine: str = "netcdf4", compression: str | None = None) -> None:
        write_file(datasets, path, engine=engine, compression=compression)


FORMAT = NetcdfFormat()


def _backend_class() -> type:
    """The xarray backend, built on first use so that importing this module does not import xarray."""
    from xarray.backends import BackendEntrypoint

    class UsidBackendEntrypoint(BackendEntrypoint):
        """``xr.open_dataset(path, engine="usid")``: h5USID files as xarray, lazily (ancillaries read at open)."""

        description = "Open h5USID (pyUSID, pycroscopy) files with their N-D dims, lazily"
        url = "https://github.com/pycroscopy/pyUSID"
        open_dataset_parameters = ("filename_or_obj", "drop_variables", "dataset")

        def open_dataset(self, filename_or_obj: Any, *, drop_variables: Any = None, dataset: str | None = None) -> Any:
            from usidbridge.api import read

            opened = to_xarray_dataset(read(filename_or_obj, "h5usid", lazy=True, dataset=dataset), indexable=True)
            return opened.drop_vars(drop_variables, errors="ignore") if drop_variables else opened

        def guess_can_open(self, filename_or_obj: Any) -> bool:
            try:
                path = Path(filename_or_obj)
                with open(path, "rb") as handle:
                    head = handle.read(4096)
                return registry.get("h5usid").sniff(head, path) == 2
            except (OSError, TypeError, ValueError):
                return False

    return UsidBackendEntrypoint


def __getattr__(name: str) -> Any:
    if name == "UsidBackendEntrypoint":
        return _backend_class()
    raise AttributeError(name)
