"""How USID lays numbers out: the types a Main dataset may hold, and the full C-ordered grids of its
ancillary tables, built (`grid_indices`, `fill_grid`) and recognised in tables of any column order
(`grid_layout`). Plain numpy, below the model and the rules, which both use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

ALLOWED_KINDS = "iufc"


def check_dtype(dtype: np.dtype) -> str | None:
    """Why `dtype` cannot be a USID Main dataset, or None when it can (numeric, complex, compound of those)."""
    if dtype.fields:
        for field, (field_dtype, *_rest) in dtype.fields.items():
            problem = check_dtype(field_dtype)
            if problem:
                return f"field {field!r}: {problem}"
        return None
    if dtype.kind not in ALLOWED_KINDS:
        return f"dtype {dtype} is not numeric, complex or compound"
    return None


def index_dtype(largest: int) -> np.dtype:
    """uint32 (USID's index type), or uint64 when an index exceeds it."""
    return np.dtype(np.uint32 if largest <= np.iinfo(np.uint32).max else np.uint64)


def strides(sizes: Sequence[int]) -> list[int]:
    """Row strides of each dim in a C-ordered grid (slowest first)."""
    strides, stride = [], 1
    for size in reversed(sizes):
        strides.append(stride)
        stride *= size
    return strides[::-1]


def along(values: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """`values` shaped to broadcast along `axis` of an `ndim`-D grid."""
    shape = [1] * ndim
    shape[axis] = -1
    return values.reshape(shape)


def fill_grid(table: np.ndarray, sizes: Sequence[int], columns: Sequence[np.ndarray]) -> np.ndarray:
    """Write the C-ordered grid of `columns` (one 1-D array per dim, slowest first) into `table` (n, k)."""
    view = table.reshape(*sizes, len(sizes))
    for axis, column in enumerate(columns):
        view[..., axis] = along(column, axis, len(sizes))
    return table


def grid_indices(sizes: Sequence[int]) -> np.ndarray:
    """Indices table (n, k) of the C-ordered grid with these sizes (slowest first), vectorised."""
    sizes = [int(size) for size in sizes]
    dtype = index_dtype(max(sizes, default=1))
    table = np.empty((math.prod(sizes), len(sizes)), dtype=dtype)
    return fill_grid(table, sizes, [np.arange(size, dtype=dtype) for size in sizes])


def table_columns(table: np.ndarray) -> np.ndarray:
    """The columns of an (n, k) table as the rows of a C-contiguous (k, n) array (a view when the
    table is stored so: USID's Spectroscopic tables). numpy's loops over one column of a row-major
    table are strided, several times slower than over contiguous memory; the copy costs one of them."""
    return np.ascontiguousarray(table.T)


def matches_grid(stored_columns: np.ndarray, sizes: Sequence[int], order: Sequence[int], columns: Sequence[np.ndarray]) -> bool:
    """True when column ``order[a]`` of a table (given as its `table_columns`) is ``columns[a]``
    repeated over a C-ordered grid of `sizes`."""
    for axis, (column_index, column) in enumerate(zip(order, columns)):
        stored, expected = stored_columns[column_index].reshape(sizes), along(column, axis, len(sizes))
        same = stored == expected
        if np.issubdtype(column.dtype, np.floating) and np.isnan(column).any():
            same |= np.isnan(stored) & np.isnan(expected)
        if not same.all():
            return False
    return True


def grid_layout(indices: np.ndarray) -> tuple[list[int], list[int]] | None:
    """``(column order, sizes)``, slowest first, if the rows of `indices` are a C-ordered full grid.

    The rate of change of each column is read from the indices: the fastest column changes at
    row 1, the next one after a whole run of the fastest, and so on; size-1 columns keep their
    place. Returns None for anything else (sparse positions, gaps, shuffled rows).
    """
    rows, count = indices.shape
    columns = table_columns(indices)
    first_change = {}
    for j, column in enumerate(columns):
        changes_at = int(np.argmax(column != column[0]))
        if changes_at:
            first_change[j] = changes_at
    order = list(range(count))
    varying = [j for j in order if j in first_change]
    if len(varying) >= 2 and first_change[varying[0]] < first_change[varying[-1]]:
        order.reverse()
    key, last = {}, math.inf
    for j in order:
        last = first_change.get(j, last)
        key[j] = last
    order.sort(key=lambda j: -key[j])
    varying = [j for j in order if j in first_change]
    slower_strides = [rows] + [first_change[j] for j in varying[:-1]]
    size_of = {}
    for j, slower_stride in zip(varying, slower_strides):
        if slower_stride % first_change[j]:
            return None
        size_of[j] = slower_stride // first_change[j]
    ordered_sizes = [size_of.get(j, 1) for j in order]
    if math.prod(ordered_sizes) != rows:
        return None
    ranges = [np.arange(size, dtype=indices.dtype) for size in ordered_sizes]
    if not matches_grid(columns, ordered_sizes, order, ranges):
        return None
    return order, ordered_sizes
