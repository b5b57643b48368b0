"""The canonical USID model: `Dimension`, `Ancillary` and `Dataset`.

A USID Main dataset is a 2-D array (n_positions, n_spectral) described by two ancillaries: a
Position and a Spectroscopic table of indices and values, one column per varied parameter.

One ordering convention holds everywhere in usidbridge: dimension lists run **slowest → fastest**,
the order of the axes of the C-ordered N-D array. The N-D form of a dataset is
``position dims + spectroscopic dims``. Tables found in files may order their columns either way;
`Ancillary.from_table` finds the rate of change of each column from the indices themselves.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .codec import tagged, untagged
from .errors import ModelError, NotAGridError, UnreadableFileError
from .layout import fill_grid, grid_indices, grid_layout, index_dtype, matches_grid, strides
from .lazy import LAZY_BLOCK_BYTES, FileArray, FlatRows, NDRows, RowReader, as_dask, is_file_backed, mapped
from .rules import check_dataset

PLACEHOLDER_NAME = "arb"
PLACEHOLDER_UNITS = "a.u."


class Dimension:
    """One varied parameter: a name, its units and the 1-D float values it takes.

    Parameters
    ----------
    name, units : str
        Label and units, e.g. ``Dimension("X", "nm", 256)``.
    values : int or array-like
        The values (any order, uniform or not), or a size for the values 0, 1, ..., size-1.
    """

    __slots__ = ("name", "units", "values")

    def __init__(self, name: str, units: str, values: int | Sequence[float] | np.ndarray) -> None:
        if not isinstance(name, str) or not name:
            raise ModelError(f"a dimension needs a non-empty string name, got {name!r}")
        if not isinstance(units, str):
            raise ModelError(f"dimension {name!r}: units must be a string, got {units!r}")
        if isinstance(values, (int, np.integer)):
            values = np.arange(int(values), dtype=np.float64)
        array = np.asarray(values)
        if array.dtype.kind not in "biuf":
            raise ModelError(f"dimension {name!r}: values must be real numbers, got dtype {array.dtype}")
        array = np.array(array, dtype=np.float64, ndmin=1)
        if array.ndim != 1 or array.size == 0:
            raise ModelError(f"dimension {name!r}: values must be a non-empty 1-D array, got shape {array.shape}")
        array.setflags(write=False)
        self.name = name
        self.units = units
        self.values = array

    @classmethod
    def uniform(cls, name: str, units: str, size: int, offset: float = 0.0, scale: float = 1.0) -> Dimension:
        """A dimension with values ``offset + scale * i`` for i in 0..size-1."""
        return cls(name, units, offset + scale * np.arange(size, dtype=np.float64))

    @property
    def size(self) -> int:
        return int(self.values.size)

    @property
    def offset(self) -> float:
        return float(self.values[0])

    @property
    def scale(self) -> float:
        """Step between values; only meaningful when `is_uniform` (1.0 for a single value)."""
        return float(self.values[1] - self.values[0]) if self.size > 1 else 1.0

    @property
    def is_uniform(self) -> bool:
        """True when ``offset + scale * arange(size)`` reproduces the values to float32 precision."""
        if self.size <= 2:
            return True
        expected = self.offset + self.scale * np.arange(self.size)
        float32_precision = 4 * np.finfo(np.float32).eps * float(np.max(np.abs(self.values)))
        tolerance = max(1e-5 * abs(self.scale), float32_precision)
        return bool(np.all(np.abs(self.values - expected) <= tolerance))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dimension):
            return NotImplemented
        return (self.name, self.units) == (other.name, other.units) and np.array_equal(
            self.values, other.values, equal_nan=True
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self.is_uniform:
            return f"Dimension({self.name!r}, {self.units!r}, size={self.size}, offset={self.offset:g}, scale={self.scale:g})"
        return f"Dimension({self.name!r}, {self.units!r}, size={self.size}, non-uniform)"


def placeholder_dimension() -> Dimension:
    """The single-valued dimension USID uses when a dataset varies nothing on one side."""
    return Dimension(PLACEHOLDER_NAME, PLACEHOLDER_UNITS, [0.0])


class Ancillary:
    """The Position or Spectroscopic description of one axis of a Main dataset.

    Either a **grid** (the Cartesian product of `dims`, slowest first) or an **explicit table**
    of `indices` (uint, shape (n, k)) and `values` (float, shape (n, k)) for what is not a full
    grid: sparse positions, spectra whose parameters change mid-run. Tables of a grid are built on
    demand; `dims` exists only for a grid.
    """

    def __init__(self, dims: Sequence[Dimension]) -> None:
        dims = tuple(dims)
        if not dims:
            raise ModelError("an ancillary needs at least one dimension (use placeholder_dimension())")
        labels = [dim.name for dim in dims]
        if len(set(labels)) != len(labels):
            raise ModelError(f"dimension names must be unique within an ancillary, got {labels}")
        self._dims: tuple[Dimension, ...] | None = dims
        self.labels: tuple[str, ...] = tuple(labels)
        self.units: tuple[str, ...] = tuple(dim.units for dim in dims)
        self._indices: np.ndarray | None = None
        self._values: np.ndarray | None = None

    @classmethod
    def from_table(
        cls,
        labels: Sequence[str],
        units: Sequence[str],
        indices: np.ndarray,
        values: np.ndarray,
    ) -> Ancillary:
        """Build from an (n, k) table as stored in a file, whatever its column order.

        The result is a grid (with dims slowest → fastest) when the rows are a C-ordered full grid
        in some order of the columns and the values are a function of the indices; otherwise the
        table is kept exactly as given.
        """
        labels, units = tuple(str(x) for x in labels), tuple(str(x) for x in units)
        indices, values = np.asarray(indices), np.asarray(values)
        if indices.ndim != 2 or indices.shape != values.shape or indices.shape[0] == 0:
            raise ModelError(f"indices {indices.shape} and values {values.shape} must be the same non-empty (n, k) shape")
        if not (len(labels) == len(units) == indices.shape[1]):
            raise ModelError(f"{indices.shape[1]} columns need as many labels and units, got {labels} and {units}")
        if len(set(labels)) != len(labels):
            raise ModelError(f"labels must be unique, got {labels}")
        if indices.dtype.kind not in "ui" or values.dtype.kind not in "iuf":
            raise ModelError(f"indices must be integers and values real numbers, got {indices.dtype} and {values.dtype}")
        if indices.dtype.kind == "i" and indices.min() < 0:
            raise ModelError("indices must not be negative")
        layout = grid_layout(indices)
        if layout is not None:
            order, sizes = layout
            dims = [
                Dimension(labels[j], units[j], values[: stride * size : stride, j])
                for j, size, stride in zip(order, sizes, strides(sizes))
            ]
            if matches_grid(values, sizes, order, [dim.values for dim in dims]):
                return cls(dims)
        table = cls.__new__(cls)
        table._dims = None
        table.labels, table.units = labels, units
        table._indices = np.array(indices, dtype=index_dtype(int(indices.max())))  # a copy: the caller's array stays writable
        table._values = np.array(values, dtype=np.float64)
        table._indices.setflags(write=False)
        table._values.setflags(write=False)
        return table

    @classmethod
    def from_points(cls, labels: Sequence[str], units: Sequence[str], values: np.ndarray) -> Ancillary:
        """Build from the values alone, one row per point (a turned scan frame, measured tip
        positions): each dim's index is the rank of its value among the distinct ones, so that one
        index has one value, as USID asks. A grid when the points happen to form one."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] == 0:
            raise ModelError(f"point values must be a non-empty (n, k) table, got shape {values.shape}")
        indices = np.column_stack([np.unique(column, return_inverse=True)[1].reshape(-1) for column in values.T])
        return cls.from_table(labels, units, indices.astype(index_dtype(int(indices.max()))), values)

    @property
    def is_grid(self) -> bool:
        return self._dims is not None

    @property
    def dims(self) -> tuple[Dimension, ...]:
        """The dimensions, slowest first; raises `NotAGridError` for an explicit table."""
        if self._dims is None:
            raise NotAGridError(
                f"the ancillary {list(self.labels)} is not a full grid (sparse or changing parameters); "
                "use its indices and values tables"
            )
        return self._dims

    @property
    def shape(self) -> tuple[int, ...]:
        """Sizes of the dims, slowest first (grid only)."""
        return tuple(dim.size for dim in self.dims)

    @property
    def size(self) -> int:
        """Number of rows: positions or spectral points."""
        if self._dims is not None:
            return math.prod(dim.size for dim in self._dims)
        return int(self._indices.shape[0])

    @property
    def ndim(self) -> int:
        return len(self.labels)

    @property
    def indices(self) -> np.ndarray:
        """(n, k) unsigned index table, columns slowest first for a grid."""
        if self._indices is None:
            self._indices = grid_indices(self.shape)
            self._indices.setflags(write=False)
        return self._indices

    @property
    def values(self) -> np.ndarray:
        """(n, k) float64 value table matching `indices`."""
        if self._values is None:
            table = np.empty((self.size, self.ndim), dtype=np.float64)
            self._values = fill_grid(table, self.shape, [dim.values for dim in self.dims])
            self._values.setflags(write=False)
        return self._values

    def rows(self, start: int, stop: int, values_dtype: np.dtype | type = np.float64) -> tuple[np.ndarray, np.ndarray]:
        """Indices and values (in `values_dtype`) of rows [start, stop): computed from the dims of a
        grid, so no full table is built, and filled in the dtype they are written in."""
        if self._dims is None or (self._indices is not None and self._values is not None):
            return self.indices[start:stop], self.values[start:stop].astype(values_dtype, copy=False)
        inner = math.prod(self.shape[1:])
        first, last = start // inner, -(-stop // inner)
        if (last - first) * inner <= 2 * (stop - start):  # whole slabs of the slowest dim, trimmed: filled by broadcasting
            sizes = (last - first, *self.shape[1:])
            indices = np.empty((math.prod(sizes), self.ndim), self.index_dtype)
            values = np.empty(indices.shape, values_dtype)
            columns = [np.arange(size, dtype=indices.dtype) for size in sizes]
            columns[0] = columns[0] + first
            fill_grid(indices, sizes, columns)
            fill_grid(values, sizes, [self._dims[0].values[first:last].astype(values_dtype), *[dim.values.astype(values_dtype) for dim in self._dims[1:]]])
            trim = slice(start - first * inner, stop - first * inner)
            return indices[trim], values[trim]
        flat = np.arange(start, stop, dtype=np.int64)
        indices = np.stack(np.unravel_index(flat, self.shape), axis=1).astype(self.index_dtype)
        values = np.empty(indices.shape, dtype=values_dtype)
        for column, dim in enumerate(self._dims):
            np.take(dim.values.astype(values_dtype), indices[:, column], out=values[:, column])
        return indices, values

    @property
    def index_dtype(self) -> np.dtype:
        """uint32, or uint64 when a dimension has more than 2^32 steps."""
        return index_dtype(max(self.shape) if self.is_grid else int(self._indices.max()) + 1)

    @property
    def values_dtype(self) -> np.dtype:
        """float32 where every value survives it exactly, else float64 (decided on the dims for a grid)."""
        columns = [dim.values for dim in self._dims] if self._dims is not None else [self._values]
        lossless = all(np.array_equal(column.astype(np.float32).astype(np.float64), column, equal_nan=True) for column in columns)
        return np.dtype(np.float32 if lossless else np.float64)

    def same_as(self, other: Ancillary) -> bool:
        """True when both describe the same labels, units, indices and values."""
        if (self.labels, self.units, self.is_grid, self.size) != (other.labels, other.units, other.is_grid, other.size):
            return False
        if self.is_grid:
            return self.dims == other.dims
        return np.array_equal(self.indices, other.indices) and np.array_equal(self.values, other.values, equal_nan=True)

    def __repr__(self) -> str:
        if self.is_grid:
            return f"Ancillary({list(self.dims)!r})"
        return f"Ancillary(table, labels={list(self.labels)}, units={list(self.units)}, rows={self.size})"


def _flatten(array: Any, flat: tuple[int, int]) -> Any:
    """`array` as (positions, spectral) without reading it: a view when the strides allow; a memory map
    that needs a copy is read by blocks of rows when used (`FlatRows`)."""
    if not isinstance(array, np.ndarray):
        return array.reshape(flat)
    try:
        return np.reshape(array, flat, copy=False)  # numpy >= 2.1: refuses, without allocating, when a copy is needed
    except ValueError:
        pass
    except TypeError:  # older numpy: the shape setter refuses to copy
        view = array.view()
        try:
            view.shape = flat
            return view
        except AttributeError:
            pass
    if is_file_backed(array):
        row_axes = next(axis for axis in range(array.ndim + 1) if math.prod(array.shape[:axis]) == flat[0])
        return FlatRows(array, row_axes)
    return array.reshape(flat)


class Dataset:
    """One USID Main dataset in memory.

    Parameters
    ----------
    data : array-like, shape (n_positions, n_spectral)
        A numpy array, an h5py dataset or a dask array; integer, float, complex or compound.
    pos, spec : Ancillary
        Position and Spectroscopic descriptions; their sizes must match the data.
    name, quantity, units : str
        HDF5 name of the Main dataset, the physical quantity and its units.
    metadata : dict
        Nested dict of plain values: everything the source said that has no other home.
    source : str
        Where the dataset came from (file and path), for messages.
    """

    def __init__(
        self,
        data: Any,
        pos: Ancillary,
        spec: Ancillary,
        *,
        name: str = "Raw_Data",
        quantity: str = "generic",
        units: str = "a.u.",
        metadata: Mapping[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        if not hasattr(data, "shape") or not hasattr(data, "dtype"):
            data = np.asarray(data)
        if len(data.shape) != 2:
            raise ModelError(f"Main data must be 2-D (positions, spectral points), got shape {tuple(data.shape)}")
        if tuple(data.shape) != (pos.size, spec.size):
            raise ModelError(
                f"data shape {tuple(data.shape)} does not match {pos.size} positions x {spec.size} spectral points"
            )
        self.data = data
        self.pos = pos
        self.spec = spec
        self.name = name
        self.quantity = quantity
        self.units = units
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.source = source

    @classmethod
    def from_ndarray(
        cls,
        array: Any,
        pos_dims: Iterable[Dimension],
        spec_dims: Iterable[Dimension] = (),
        **attributes: Any,
    ) -> Dataset:
        """Build from the N-D form: axes are ``pos_dims + spec_dims``, each list slowest first.

        An empty list on either side becomes USID's single-valued placeholder dimension ``arb``.
        The 2-D data is a view of `array` when it is C-contiguous (no copy).
        """
        pos_dims, spec_dims = list(pos_dims), list(spec_dims)
        if not hasattr(array, "shape"):
            array = np.asarray(array)
        expected = tuple(dim.size for dim in pos_dims + spec_dims)
        if tuple(array.shape) != expected:
            names = [dim.name for dim in pos_dims + spec_dims]
            raise ModelError(f"array shape {tuple(array.shape)} does not match dims {names} of sizes {expected}")
        pos = Ancillary(pos_dims or [placeholder_dimension()])
        spec = Ancillary(spec_dims or [placeholder_dimension()])
        flat = (pos.size, spec.size)
        if tuple(array.shape) == flat:
            return cls(array, pos, spec, **attributes)
        if not hasattr(array, "reshape"):  # data left in a file (h5py, FileArray): read by blocks of rows when used
            return cls(FlatRows(array, len(pos_dims)), pos, spec, **attributes)
        return cls(_flatten(array, flat), pos, spec, **attributes)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.pos.size, self.spec.size)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)

    @property
    def is_grid(self) -> bool:
        """True when both ancillaries are full grids, so the N-D form exists."""
        return self.pos.is_grid and self.spec.is_grid

    @property
    def position_dims(self) -> tuple[Dimension, ...]:
        return self.pos.dims

    @property
    def spectroscopic_dims(self) -> tuple[Dimension, ...]:
        return self.spec.dims

    @property
    def dims(self) -> tuple[Dimension, ...]:
        """All dims in N-D axis order: positions then spectroscopic, each slowest first."""
        return self.pos.dims + self.spec.dims

    @property
    def nd_shape(self) -> tuple[int, ...]:
        return self.pos.shape + self.spec.shape

    @property
    def lazy_data(self) -> Any:
        """The 2-D data without reading it: numpy as it is, dask as it is, h5py (and other array-likes) wrapped in dask."""
        if isinstance(self.data, np.ndarray) or hasattr(self.data, "compute"):
            return self.data
        return as_dask(self.data)

    def lazy_nd(self, map_file: bool = False) -> Any:
        """The N-D form without reading it: numpy stays a view, dask stays dask; data left in a file
        becomes dask in chunks of whole slabs of the slowest position dim, read through `NDRows`
        (no rechunking of row blocks that straddle the slabs).

        With `map_file`, data that lies contiguous in an HDF5 file is read as views of a memory map
        (`lazy.mapped`): computing the whole array then holds it once, not twice (chunks and their
        concatenation). Streaming writers read through h5py, which is faster for them (1 GiB to
        netCDF: 0.57 s against 0.70 s).
        """
        if isinstance(self.data, np.ndarray) or hasattr(self.data, "compute"):
            return self.data.reshape(self.nd_shape)
        import dask.array

        source = mapped(self.data) if map_file else None
        if source is None:
            source = self.data if isinstance(self.data, (FileArray, RowReader)) else FileArray(self.data)
        rows = NDRows(source, self.nd_shape, self.pos.shape)
        slab_bytes = max(1, rows.rows_per_step * self.shape[1] * self.dtype.itemsize)
        chunks = (max(1, LAZY_BLOCK_BYTES // slab_bytes), *self.nd_shape[1:])
        return dask.array.from_array(rows, chunks=chunks, name=False, meta=np.empty((0,) * len(self.nd_shape), self.dtype))

    @property
    def is_lazy(self) -> bool:
        """True when the data is not an in-memory numpy array (h5py or dask)."""
        return not isinstance(self.data, np.ndarray)

    def load(self) -> Dataset:
        """Read the data into memory (from h5py, dask or a memory map) and return the dataset.

        A read that fails in the file's library (h5py, netCDF, a reader's dask graph) is an
        `UnreadableFileError` naming the source.
        """
        if not isinstance(self.data, np.ndarray) or is_file_backed(self.data):
            try:
                self.data = np.array(self.data)
            except RecursionError:
                raise
            except (OSError, RuntimeError) as error:
                raise UnreadableFileError(f"cannot read the data of {self.name} (damaged file?): {error}", (self.source or "").split("::")[0] or None) from None
        return self

    def visualize(self, notebook: bool | None = None) -> Any:
        """Look at the dataset, as pyUSID's ``USIDataset.visualize``: in a notebook a map with the
        spectrum under a movable cursor, or a stack with a slider; elsewhere the static preview
        figure (`usidbridge.visualize.visualize`)."""
        from .visualize import visualize

        return visualize(self, notebook)

    def to_ndarray(self, squeeze: bool = False) -> Any:
        """The N-D form (axes as `dims`): a view for numpy, read once for h5py, lazy for dask.

        With ``squeeze=True`` axes of size 1 (USID's placeholders) are dropped.
        """
        shape = self.nd_shape
        data = self.data
        if not hasattr(data, "reshape"):
            data = data[()]
        array = data.reshape(shape)
        return array.squeeze() if squeeze else array

    def dim(self, name: str) -> Dimension:
        """The dim called `name`, position or spectroscopic: ``ds.dim("Bias").values``, ``.units``.
        A non-grid position column comes back with one value per position row."""
        for ancillary in (self.pos, self.spec):
            if name in ancillary.labels:
                if ancillary.is_grid:
                    return ancillary.dims[ancillary.labels.index(name)]
                column = ancillary.labels.index(name)
                return Dimension(name, ancillary.units[column], ancillary.values[:, column])
        raise ModelError(f"no dim {name!r}; this dataset has {list(self.pos.labels + self.spec.labels)}")

    def isel(self, **indexers: int | slice | Sequence[int]) -> Dataset:
        """The dataset at these indices, by dim name (``ds.isel(X=slice(0, 10), Bias=3)``), as
        pyUSID's ``USIDataset.slice`` and xarray's ``isel``: an integer drops its dim, a slice or a
        list keeps it. Lazy stays lazy; quantity, units and metadata are kept. Non-grid positions
        are selected by row with ``position=``."""
        unknown = set(indexers) - set(self.spec.labels) - ({"position"} if not self.pos.is_grid else set(self.pos.labels))
        if unknown:
            names = list(self.spec.labels) + (["position"] if not self.pos.is_grid else list(self.pos.labels))
            raise ModelError(f"no dim {sorted(unknown)} to select along; this dataset has {names}")
        if not self.spec.is_grid:
            raise NotAGridError("spectroscopic values that are not a grid cannot be selected by dim")
        attributes = {"name": self.name, "quantity": self.quantity, "units": self.units, "metadata": dict(self.metadata), "source": self.source}
        if self.pos.is_grid:
            pos_dims, index_pos = _select(self.pos.dims, indexers)
            spec_dims, index_spec = _select(self.spec.dims, indexers)
            return Dataset.from_ndarray(self.lazy_nd()[tuple(index_pos + index_spec)], pos_dims, spec_dims, **attributes)
        rows = _index(indexers.get("position", slice(None)), self.pos.size, "position")
        spec_dims, index_spec = _select(self.spec.dims, indexers)
        kept = np.arange(self.pos.size)[rows].reshape(-1)
        data = self.lazy_data[kept].reshape((kept.size, *self.spec.shape))[(slice(None), *index_spec)]
        spec = Ancillary(spec_dims or [placeholder_dimension()])
        pos = Ancillary.from_table(self.pos.labels, self.pos.units, self.pos.indices[kept], self.pos.values[kept])
        return Dataset(data.reshape(kept.size, spec.size), pos, spec, **attributes)

    def sel(self, method: str | None = None, **labels: Any) -> Dataset:
        """The dataset at these dim values (``ds.sel(Bias=0.5)``, ``ds.sel(X=slice(1e-6, 2e-6))``),
        as xarray's ``sel``: a value picks the index holding it (``method="nearest"``: the closest),
        a slice keeps the values within its bounds. See `isel`."""
        if method not in (None, "nearest"):
            raise ModelError(f"method {method!r}: use None (exact values) or 'nearest'")
        indexers: dict[str, Any] = {}
        for name, wanted in labels.items():
            values = self.dim(name).values
            if isinstance(wanted, slice):
                low, high = (-np.inf if wanted.start is None else wanted.start), (np.inf if wanted.stop is None else wanted.stop)
                inside = np.flatnonzero((values >= min(low, high)) & (values <= max(low, high)))
                if inside.size == 0:
                    raise ModelError(f"no {name} value between {wanted.start} and {wanted.stop} (from {values.min():g} to {values.max():g})")
                indexers[name] = inside.tolist()
            else:
                indexers[name] = _nearest(values, float(wanted), name, method)
        return self.isel(**indexers)

    def validate(self) -> list:
        """Apply the in-memory USID rules; returns a list of `usidbridge.rules.Finding`."""
        return check_dataset(self)

    def __repr__(self) -> str:
        pos = list(self.pos.labels) if self.pos.is_grid else f"{self.pos.size} non-grid positions"
        return (
            f"Dataset({self.name!r}, {self.quantity!r} [{self.units}], {self.dtype}, shape={self.shape}, "
            f"pos={pos}, spec={list(self.spec.labels)})"
        )


def _index(index: Any, size: int, name: str) -> Any:
    """An integer, slice or list of integers along a dim of `size`, checked."""
    if isinstance(index, slice):
        return index
    if isinstance(index, (int, np.integer)):
        if not -size <= int(index) < size:
            raise ModelError(f"index {index} is outside {name}'s {size} values")
        return int(index)
    chosen = np.asarray(index)
    if chosen.ndim != 1 or chosen.dtype.kind not in "iu" or (chosen.size and (chosen.min() < -size or chosen.max() >= size)):
        raise ModelError(f"{name}: an index list must hold integers within its {size} values, got {index!r:.60}")
    return chosen


def _select(dims: Sequence[Dimension], indexers: Mapping[str, Any]) -> tuple[list[Dimension], list[Any]]:
    """The dims that remain and the index of each axis, for the dims of one side. When integers
    drop every dim of the side, the last stays as a dim of one value (``Bias = 0.5``), where
    USID would otherwise put its nameless placeholder."""
    index = [_index(indexers.get(dim.name, slice(None)), dim.size, dim.name) for dim in dims]
    if dims and all(isinstance(chosen, int) for chosen in index):
        last = index[-1] % dims[-1].size
        index[-1] = slice(last, last + 1)
    remaining = []
    for dim, chosen in zip(dims, index):
        if not isinstance(chosen, int):
            values = dim.values[chosen]
            if values.size == 0:
                raise ModelError(f"{dim.name}: the selection {chosen} keeps none of its {dim.size} values")
            remaining.append(Dimension(dim.name, dim.units, values))
    return remaining, index


def _nearest(values: np.ndarray, wanted: float, name: str, method: str | None) -> int:
    """The index of `wanted` among `values`: the closest with ``nearest``, else an equal one (to float rounding)."""
    distance = np.abs(values - wanted)
    best = int(np.argmin(distance))
    if method is None and not np.isclose(values[best], wanted, rtol=1e-9, atol=0.0):
        raise ModelError(f"{name} has no value {wanted:g} (closest: {values[best]:g}); use method='nearest'")
    return best


def placeholder_axes(dataset: Dataset) -> list[int]:
    """N-D axes that are USID's size-1 placeholders (a side with one dim of size 1). Formats whose
    readers take every axis for data (NeXus, xarray) leave them out, so that an image is 2-D and a
    spectrum 1-D, and keep them with `describe_placeholders`. At least one axis stays."""
    positions = len(dataset.pos.dims)
    axes = []
    if positions == 1 and dataset.pos.dims[0].size == 1:
        axes.append(0)
    if len(dataset.spec.dims) == 1 and dataset.spec.dims[0].size == 1 and positions > len(axes):
        axes.append(positions)
    return axes


def describe_placeholders(dataset: Dataset, axes: Sequence[int]) -> list[dict[str, Any]]:
    """The left-out placeholder `axes` as plain entries (side, name, units, value), for an attribute."""
    return [{"side": "position" if axis < len(dataset.pos.dims) else "spectroscopic", "name": dataset.dims[axis].name,
             "units": dataset.dims[axis].units, "value": float(dataset.dims[axis].values[0])} for axis in axes]


def restore_placeholders(dataset: Dataset, entries: Any) -> Dataset:
    """Put back the placeholder dims `describe_placeholders` described; malformed entries are ignored."""
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("side") in ("position", "spectroscopic") and isinstance(entry.get("value"), (int, float)) and isinstance(entry.get("name"), str) and entry["name"]:
            setattr(dataset, "pos" if entry["side"] == "position" else "spec", Ancillary([Dimension(entry["name"], str(entry.get("units", "")), [float(entry["value"])])]))
    return dataset


def describe(dataset: Dataset, order: Sequence[int]) -> dict[str, Any]:
    """A JSON-ready description of a grid dataset whose data a file stores with its N-D axes in `order`.

    Formats without a native place for USID axes (TIFF, ...) store it beside the data, and
    `from_description` rebuilds the exact Dataset from it.
    """
    order, positions = list(order), len(dataset.pos.dims)
    return {
        "name": dataset.name,
        "quantity": dataset.quantity,
        "units": dataset.units,
        "axes": [{"name": dim.name, "units": dim.units, "values": dim.values.tolist()} for dim in (dataset.dims[axis] for axis in order)],
        "position": [order.index(axis) for axis in range(positions)],
        "spectroscopic": [order.index(axis) for axis in range(positions, len(order))],
        "metadata": tagged(dataset.metadata),
    }


def from_description(array: Any, description: Mapping[str, Any], **attributes: Any) -> Dataset:
    """The Dataset of `describe`, from the stored array (its size-1 axes may be missing).

    ``position`` and ``spectroscopic`` list stored axis numbers (names may repeat across the two sides).
    A description that does not fit the array (edited, damaged) is a `ModelError` saying how.
    """
    try:
        dims = [Dimension(axis["name"], axis["units"], axis["values"]) for axis in description["axes"]]
        position, spectral = [int(axis) for axis in description["position"]], [int(axis) for axis in description["spectroscopic"]]
        quantity, units = str(description["quantity"]), str(description["units"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(f"the stored USID description is incomplete or malformed ({type(error).__name__}: {error})") from None
    sizes = [dim.size for dim in dims]
    if sorted(position + spectral) != list(range(len(dims))):
        raise ModelError(f"the stored USID description assigns axes {position} and {spectral}, not each of its {len(dims)} axes once")
    if math.prod(sizes) != math.prod(array.shape):
        raise ModelError(f"the stored USID description has axes of sizes {sizes}, which do not fit data of shape {tuple(array.shape)}")
    array = array.reshape(sizes).transpose(position + spectral)
    attributes.setdefault("metadata", untagged(description.get("metadata", {})))
    return Dataset.from_ndarray(
        array,
        [dims[axis] for axis in position],
        [dims[axis] for axis in spectral],
        name=str(description.get("name", "Raw_Data")),
        quantity=quantity,
        units=units,
        **attributes,
    )


def group_by_positions(datasets: Sequence[Dataset]) -> list[list[Dataset]]:
    """Datasets grouped by equal Position ancillaries, in order: one measurement (h5USID) or scan (SPEC) each."""
    groups: list[list[Dataset]] = []
    for dataset in datasets:
        for members in groups:
            if members[0].pos.same_as(dataset.pos):
                members.append(dataset)
                break
        else:
            groups.append([dataset])
    return groups


def unique_per_side(dims: Sequence[Dimension], spectroscopic: Iterable[int]) -> list[Dimension]:
    """`dims` with names repeated within the position side or within the spectroscopic side made
    unique by trailing underscores (USID needs unique labels on each side; a name may appear on both)."""
    spectral = set(spectroscopic)
    result, seen = list(dims), {True: set(), False: set()}
    for axis, dim in enumerate(dims):
        side, name = axis in spectral, dim.name
        while name in seen[side]:
            name += "_"
        seen[side].add(name)
        if name != dim.name:
            result[axis] = Dimension(name, dim.units, dim.values)
    return result


def from_labelled(array: Any, dims: Sequence[Dimension], spectroscopic: Iterable[int], **attributes: Any) -> Dataset:
    """A Dataset from an N-D array whose axes are `dims` in any order; the axes whose numbers are in
    `spectroscopic` become spectroscopic dims, the others position dims (both keep their order).

    Axes are moved, not copied: numpy stays a view, dask stays lazy, and data left in a file stays there:
    read by blocks of rows (`FlatRows`) when its axes are in order, else through dask (when installed).
    """
    dims = list(dims)
    spectral_axes = sorted(set(spectroscopic))
    position_axes = [axis for axis in range(len(dims)) if axis not in spectral_axes]
    order = position_axes + spectral_axes
    if order != list(range(len(dims))):
        if not hasattr(array, "transpose"):
            array = as_dask(array) if importlib.util.find_spec("dask") is not None else np.asarray(array)
        array = array.transpose(order)
    return Dataset.from_ndarray(array, [dims[axis] for axis in position_axes], [dims[axis] for axis in spectral_axes], **attributes)
