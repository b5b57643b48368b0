"""The canonical model: dims, ancillaries (grid and table), the N-D form, speed of the tables."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from usidbridge import Ancillary, Dataset, Dimension
from usidbridge.errors import ModelError, NotAGridError
from usidbridge.layout import first_change, grid_indices, grid_layout

from strategies import dimensions


def test_dimension_from_size_and_uniformity():
    dim = Dimension("X", "nm", 4)
    assert dim.values.tolist() == [0, 1, 2, 3] and dim.is_uniform and dim.scale == 1.0
    assert not Dimension("V", "V", [0, 1, 3]).is_uniform
    assert Dimension.uniform("E", "eV", 3, offset=100, scale=0.5).values.tolist() == [100, 100.5, 101]
    assert Dimension("t", "s", [1.7e9, 1.7e9 + 1, 1.7e9 + 2]).is_uniform


@pytest.mark.parametrize(
    "bad",
    [lambda: Dimension("", "m", 2), lambda: Dimension("X", 3, 2), lambda: Dimension("X", "m", []), lambda: Dimension("X", "m", ["a"])],
)
def test_dimension_refuses_nonsense(bad):
    with pytest.raises(ModelError):
        bad()


def test_grid_tables_are_slowest_first():
    anc = Ancillary([Dimension("Y", "m", [10, 20]), Dimension("X", "m", [1, 2, 3])])
    assert anc.indices.tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
    assert anc.values[:, 0].tolist() == [10, 10, 10, 20, 20, 20]
    assert anc.indices.dtype == np.uint32 and anc.shape == (2, 3) and anc.size == 6


@given(dims=dimensions(3), permutation=st.permutations([0, 1, 2]))
@settings(max_examples=60, deadline=None)
def test_from_table_finds_the_order_in_any_column_order(dims, permutation):
    grid = Ancillary(dims)
    table = Ancillary.from_table(
        [grid.labels[j] for j in permutation], [grid.units[j] for j in permutation], grid.indices[:, permutation], grid.values[:, permutation]
    )
    assert table.is_grid
    varying = [dim.name for dim in dims if dim.size > 1]
    assert [dim.name for dim in table.dims if dim.size > 1] == varying
    for dim in table.dims:
        assert dim == next(d for d in dims if d.name == dim.name)


@given(dims=dimensions(3, max_size=5), data=st.data())
@settings(max_examples=60, deadline=None)
def test_rows_of_a_grid_are_its_tables_rows(dims, data):
    """Writers take a grid's tables by blocks of rows, computed from the dims without the full tables."""
    whole = Ancillary(dims)
    start = data.draw(st.integers(0, whole.size))
    stop = data.draw(st.integers(start, whole.size))
    indices, values = Ancillary(dims).rows(start, stop)
    assert indices.dtype == whole.indices.dtype and np.array_equal(indices, whole.indices[start:stop])
    assert np.array_equal(values, whole.values[start:stop], equal_nan=True)


def test_fastest_first_file_order_is_reversed():
    grid = Ancillary([Dimension("Y", "m", 3), Dimension("X", "m", 4)])
    fastest_first = Ancillary.from_table(["X", "Y"], ["m", "m"], grid.indices[:, ::-1], grid.values[:, ::-1])
    assert fastest_first.labels == ("Y", "X") and fastest_first.shape == (3, 4)


def test_non_grid_tables_are_kept_exactly():
    indices = np.array([[0, 0], [1, 0], [0, 1]], dtype=np.uint32)  # 3 of 4 grid points: sparse
    values = indices * 2.0
    anc = Ancillary.from_table(["X", "Y"], ["m", "m"], indices, values)
    assert not anc.is_grid and anc.size == 3
    assert np.array_equal(anc.indices, indices) and np.array_equal(anc.values, values)
    assert indices.flags.writeable and values.flags.writeable and not anc.indices.flags.writeable  # the tables kept are copies
    with pytest.raises(NotAGridError):
        anc.dims
    shuffled = grid_indices([2, 2])[[0, 3, 1, 2]]
    assert grid_layout(shuffled) is None


def test_values_that_are_not_a_function_of_indices_stay_a_table():
    grid = Ancillary([Dimension("Y", "m", 2), Dimension("X", "m", 2)])
    values = grid.values.copy()
    values[3, 1] = 9.0
    assert not Ancillary.from_table(grid.labels, grid.units, grid.indices, values).is_grid


def test_ndarray_round_trip_is_a_view():
    array = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    ds = Dataset.from_ndarray(array, [Dimension("Y", "m", 2), Dimension("X", "m", 3)], [Dimension("V", "V", 4)], quantity="I", units="A")
    assert ds.shape == (6, 4) and np.shares_memory(ds.data, array)
    assert ds.to_ndarray().shape == (2, 3, 4) and np.shares_memory(ds.to_ndarray(), array)
    image = Dataset.from_ndarray(array[0], [Dimension("Y", "m", 3), Dimension("X", "m", 4)])
    assert image.spec.labels == ("arb",) and image.to_ndarray().shape == (3, 4, 1)
    assert image.to_ndarray(squeeze=True).shape == (3, 4)


@given(dims=dimensions(4, max_size=3))
@settings(max_examples=40, deadline=None)
def test_ndarray_round_trip_for_any_split(dims):
    shape = tuple(dim.size for dim in dims)
    array = np.random.default_rng(0).normal(size=shape)
    for split in range(len(dims) + 1):
        ds = Dataset.from_ndarray(array, dims[:split], dims[split:])
        assert np.array_equal(ds.to_ndarray().reshape(shape), array)


def test_dask_backed_data_stays_lazy():
    da = pytest.importorskip("dask.array")
    lazy = da.ones((4, 6), chunks=2)
    ds = Dataset.from_ndarray(lazy, [Dimension("Y", "m", 4), Dimension("X", "m", 6)])
    assert isinstance(ds.to_ndarray(), da.Array) and ds.is_lazy


def test_shape_mismatch_is_refused():
    with pytest.raises(ModelError, match="does not match"):
        Dataset.from_ndarray(np.zeros((2, 3)), [Dimension("Y", "m", 3)], [Dimension("X", "m", 2)])
    with pytest.raises(ModelError, match="2-D"):
        Dataset(np.zeros(3), Ancillary([Dimension("X", "m", 3)]), Ancillary([Dimension("V", "V", 1)]))


def test_in_memory_rules():
    ds = Dataset.from_ndarray(np.array(["a", "b"]), [Dimension("X", "m", 2)], quantity="")
    assert {finding.rule for finding in ds.validate()} == {"M02", "M06"}


def test_ten_million_positions_build_and_detect():
    """Scale, not speed (bench/ measures speed): 10^7 positions are an ordinary size."""
    anc = Ancillary([Dimension("Y", "m", 5000), Dimension("X", "m", 2000)])
    table = Ancillary.from_table(["X", "Y"], ["m", "m"], anc.indices[:, ::-1], anc.values[:, ::-1])
    assert table.shape == (5000, 2000) and table.labels == ("Y", "X")


def test_h5py_data_in_the_2d_form_is_not_read(tmp_path):
    import h5py

    with h5py.File(tmp_path / "raw.h5", "w") as file:
        file.create_dataset("data", data=np.arange(12.0).reshape(3, 4))
    with h5py.File(tmp_path / "raw.h5", "r") as file:
        ds = Dataset.from_ndarray(file["data"], [Dimension("P", "", 3)], [Dimension("E", "eV", 4)])
        assert ds.data is file["data"] or isinstance(ds.data, h5py.Dataset)
        image = Dataset.from_ndarray(file["data"], [Dimension("Y", "", 3), Dimension("X", "", 4)])  # an image: every pixel a position
        assert image.shape == (12, 1) and image.is_lazy
        assert np.array_equal(image.data[5:9], np.arange(5.0, 9.0).reshape(4, 1))  # rows across the file's slabs
        assert np.array_equal(image.to_ndarray(squeeze=True), file["data"][()])


def test_flat_rows_read_any_row_range_in_few_hyperslabs(tmp_path, h5py_reads):
    """N-D data in a file, in its 2-D form: every row range is exact, read in at most two pieces per row axis."""
    import h5py

    array = np.arange(3 * 5 * 4 * 2, dtype=np.int16).reshape(3, 5, 4, 2)
    with h5py.File(tmp_path / "nd.h5", "w") as file:
        file.create_dataset("data", data=array)
    with h5py.File(tmp_path / "nd.h5", "r") as file:
        ds = Dataset.from_ndarray(file["data"], [Dimension("Z", "", 3), Dimension("Y", "", 5), Dimension("X", "", 4)], [Dimension("E", "", 2)])
        flat = array.reshape(60, 2)
        for start in range(0, 61, 7):
            for stop in range(start, 61, 9):
                h5py_reads.clear()
                assert np.array_equal(ds.data[start:stop], flat[start:stop])
                assert len(h5py_reads) <= 6
        assert ds.data.row_alignment == 20 and np.array_equal(ds.load().data, flat)


@pytest.mark.parametrize("rows", [1, 5, 255, 256, 257, 4095, 4097, 70_000])
def test_the_first_change_of_a_column_is_found_wherever_it_is(rows):
    column = np.zeros(70_001, np.uint32)
    column[rows:] = 1
    assert first_change(column) == rows and first_change(column[:rows]) == 0 and first_change(column[::-1]) == 70_001 - rows
