"""Hypothesis strategies for USID datasets: random dims, dtypes, non-uniform and non-grid axes."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from usidbridge import Ancillary, Dataset, Dimension

NAMES = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_µ° ", min_size=1, max_size=8).filter(str.strip)
UNITS = st.sampled_from(["", "m", "nm", "V", "a.u.", "µm", "°C", "counts"])
DTYPES = st.sampled_from(
    [
        np.dtype(np.int8),
        np.dtype(np.uint16),
        np.dtype(np.int32),
        np.dtype(np.int64),
        np.dtype(np.float32),
        np.dtype(np.float64),
        np.dtype(np.complex64),
        np.dtype(np.complex128),
        np.dtype([("amplitude", np.float32), ("phase", np.float32)]),
        np.dtype([("r", np.uint8), ("g", np.uint8), ("b", np.uint8)]),
    ]
)


@st.composite
def dimension_values(draw, size: int) -> np.ndarray:
    """Uniform, non-uniform, descending, large-offset (float32-lossy) or repeated-free random values."""
    kind = draw(st.sampled_from(["uniform", "random", "descending", "large"]))
    if kind == "uniform":
        return draw(st.floats(-1e3, 1e3)) + draw(st.floats(1e-3, 10)) * np.arange(size)
    if kind == "descending":
        return 5.0 - 0.25 * np.arange(size)
    if kind == "large":
        return 1.7e9 + np.arange(size, dtype=np.float64)
    return np.array(draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=64), min_size=size, max_size=size)))


@st.composite
def dimensions(draw, count: int, max_size: int = 4) -> list[Dimension]:
    names = draw(st.lists(NAMES, min_size=count, max_size=count, unique=True))
    result = []
    for name in names:
        size = draw(st.integers(1, max_size))
        result.append(Dimension(name, draw(UNITS), draw(dimension_values(size))))
    return result


def data_for(draw, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    if dtype.fields:
        array = np.zeros(shape, dtype=dtype)
        for field in dtype.names:
            array[field] = draw(hnp.arrays(dtype.fields[field][0], shape))
        return array
    elements = None
    if dtype.kind in "fc":
        elements = {"allow_nan": True, "allow_infinity": True, "allow_subnormal": False}
    return draw(hnp.arrays(dtype, shape, elements=elements))


@st.composite
def datasets(draw, allow_non_grid: bool = True, max_dims: int = 4) -> Dataset:
    """A random Dataset: 1-3 position dims, 0-2 spectroscopic dims, or a non-grid position table."""
    dtype = draw(DTYPES)
    spec_dims = draw(dimensions(draw(st.integers(0, min(2, max_dims - 1)))))
    metadata = draw(
        st.dictionaries(
            st.sampled_from(["operator", "sample", "temperature", "counts"]),
            st.one_of(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=10), st.integers(-10, 10), st.floats(-1, 1)),
            max_size=3,
        )
    )
    attributes = {"quantity": draw(NAMES), "units": draw(UNITS), "metadata": metadata, "name": "Raw_Data"}
    if allow_non_grid and draw(st.booleans()) and draw(st.booleans()):
        rows = draw(st.integers(1, 8))
        labels = draw(st.lists(NAMES, min_size=2, max_size=2, unique=True))
        indices = np.stack([np.arange(rows), draw(hnp.arrays(np.uint32, rows, elements=st.integers(0, 2)))], axis=1)
        indices[:, 1] = np.unique(indices[:, 1], return_inverse=True)[1]
        values = indices * 0.5 + 1.0
        pos = Ancillary.from_table(labels, ["m", "m"], indices.astype(np.uint32), values)
        spec = Ancillary(spec_dims or [Dimension("arb", "a.u.", [0.0])])
        return Dataset(data_for(draw, dtype, (pos.size, spec.size)), pos, spec, **attributes)
    pos_dims = draw(dimensions(draw(st.integers(1, max_dims - len(spec_dims)))))
    names = {dim.name for dim in spec_dims}
    pos_dims = [dim if dim.name not in names else Dimension(dim.name + "_p", dim.units, dim.values) for dim in pos_dims]
    shape = tuple(dim.size for dim in pos_dims + spec_dims)
    return Dataset.from_ndarray(data_for(draw, dtype, shape), pos_dims, spec_dims, **attributes)


TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12)
SCALARS = st.one_of(
    TEXT,
    st.booleans(),
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_subnormal=False),
    st.complex_numbers(allow_subnormal=False, max_magnitude=1e300),
    st.binary(max_size=8),
)
METADATA_ARRAY_DTYPES = st.sampled_from([np.dtype(name) for name in ("?", "i1", "u2", "i8", "f4", "f8", "c16", "U4")])


@st.composite
def metadata_arrays(draw) -> np.ndarray:
    """Small numpy arrays of the kinds metadata carries, empty and N-D ones too, NaN and infinities in floats."""
    dtype = draw(METADATA_ARRAY_DTYPES)
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=3))
    elements = {"allow_subnormal": False} if dtype.kind in "fc" else None
    if dtype.kind == "U":
        elements = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=4).filter(lambda text: not text.endswith("\x00"))
    return draw(hnp.arrays(dtype, shape, elements=elements))


# Keys as users and instruments write them, and names formats give a meaning of their own (HyperSpy's
# tree browser and .hspy markers, HDF5 paths, our encoded entries).
KEYS = st.one_of(
    NAMES,
    TEXT.filter(bool),
    st.sampled_from(["__dict__", "_sig_x", "_list_y", "_bs_z", "keys", "as_dictionary", "a b", "a_b", "x.y", "x/y", ".", "1x", "None", "usidbridge_encoded"]),
)


def metadata_values() -> st.SearchStrategy:
    """Any metadata value a user may put in a Dataset: scalars, bytes, arrays, lists and nested dicts."""
    return st.recursive(
        st.one_of(SCALARS, metadata_arrays()),
        lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(KEYS, children, max_size=3)),
        max_leaves=6,
    )


def metadata() -> st.SearchStrategy:
    return st.dictionaries(KEYS, metadata_values(), max_size=4)
