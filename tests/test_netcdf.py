"""NetCDF / xarray: files written by xarray and netCDF4 themselves, our files in plain xarray, the 'usid' engine."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import usidbridge as ub
from usidbridge.lazy import FlatRows
from usidbridge.converters import netcdf

from conftest import assert_exact_round_trip, need, same_metadata
from strategies import datasets


@pytest.fixture(scope="module")
def xr():
    return need("xarray")


def test_plain_xarray_file_converts_to_h5usid_and_back(xr, tmp_path):
    data = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
    array = xr.DataArray(
        data,
        dims=("y", "x", "energy"),
        coords={"y": ("y", [0.0, 0.5, 1.0], {"units": "um"}), "x": ("x", np.arange(4) * 0.25, {"units": "um"}), "energy": ("energy", [1.0, 1.5, 2.5, 4.0, 8.0], {"units": "keV"})},
        name="counts",
        attrs={"units": "counts", "long_name": "Fluorescence counts", "beamline": "ID21"},
    )
    xr.Dataset({"counts": array, "scalar": ((), 3.0)}).to_netcdf(tmp_path / "plain.nc")
    (dataset,) = ub.read(tmp_path / "plain.nc")
    assert [d.name for d in dataset.pos.dims] == ["y", "x"] and [d.name for d in dataset.spec.dims] == ["energy"]  # the documented rule
    assert dataset.quantity == "Fluorescence counts" and dataset.units == "counts" and dataset.spec.dims[0].units == "keV"
    assert dataset.metadata["netcdf"] == {"beamline": "ID21"}
    h5 = ub.convert(tmp_path / "plain.nc", tmp_path / "plain.h5")
    assert ub.validate(h5).ok
    back = ub.convert(h5, tmp_path / "again.nc")
    reopened = xr.open_dataset(back)
    variable = reopened[list(reopened.data_vars)[0]]
    assert np.array_equal(variable.values, data) and variable.dims == ("y", "x", "energy")
    assert reopened["energy"].attrs["units"] == "keV" and np.array_equal(reopened["energy"].values, [1.0, 1.5, 2.5, 4.0, 8.0])
    (images,) = ub.read(tmp_path / "plain.nc", spectroscopic=0)
    assert images.spec.labels == ("arb",) and images.pos.labels == ("y", "x", "energy")


def test_netcdf4_library_file(tmp_path):
    netCDF4 = need("netCDF4")
    path = tmp_path / "station.nc"
    with netCDF4.Dataset(path, "w") as file:
        file.createDimension("time", 6)
        file.createDimension("depth", 2)
        time = file.createVariable("time", "f8", ("time",))
        time[:] = np.arange(6) * 600.0
        time.units = "s"
        temperature = file.createVariable("temperature", "f4", ("time", "depth"))
        temperature[:] = np.arange(12, dtype=np.float32).reshape(6, 2)
        temperature.units = "degC"
    (dataset,) = ub.read(path)
    assert dataset.pos.labels == ("time", "depth") and dataset.pos.dims[0].units == "s" and dataset.units == "degC"
    out = ub.convert(path, tmp_path / "station.h5")
    again = ub.read(ub.convert(out, tmp_path / "station_again.nc"))[0]
    assert np.array_equal(again.to_ndarray(), np.arange(12, dtype=np.float32).reshape(6, 2, 1))
    assert again.pos.same_as(dataset.pos)


@pytest.mark.parametrize("engine", ["netcdf4", "h5netcdf"])
def test_our_files_in_plain_xarray(xr, shared_data, tmp_path, engine):
    source = ub.read(shared_data / "usid" / "SingFreqPFM_0003.h5")
    out = ub.write(source, tmp_path / f"pfm_{engine}.nc", engine=engine)
    opened = xr.open_dataset(out, engine=engine)
    assert list(opened.data_vars) == ["HeightRetrace", "AmplitudeRetrace", "DeflectionRetrace", "PhaseRetrace"]
    assert opened["X"].attrs["units"] == "m" and np.allclose(opened["X"].values, source[0].pos.dims[1].values)
    assert opened["HeightRetrace"].attrs["units"] == "m"
    back = ub.read(out, lazy=True)
    assert back[0].is_lazy and isinstance(back[0].data, FlatRows)  # lazy: read by blocks of rows straight from the HDF5 file
    for mine, theirs in zip(back, source):
        assert mine.pos.same_as(theirs.pos) and mine.spec.same_as(theirs.spec) and np.array_equal(np.asarray(mine.data), theirs.data)
        assert same_metadata(mine.metadata, theirs.metadata)


def test_lazy_reads_go_through_xarray_where_the_file_stores_something_else(xr, tmp_path):
    """Scaled, masked and netCDF-3 variables are read as xarray decodes them; plain ones straight from HDF5."""
    values = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    plain_variable = xr.DataArray(values.astype(np.float32), dims=("y", "x", "energy"), name="plain")
    scaled = xr.DataArray(values.astype(np.float64) * 0.5, dims=("y", "x", "energy"), name="scaled")
    filled = xr.DataArray(np.where(values == 5, -1, values).astype(np.int16), dims=("y", "x", "energy"), name="filled")
    path = tmp_path / "mixed.nc"
    xr.Dataset({"plain": plain_variable, "scaled": scaled, "filled": filled}).to_netcdf(
        path, encoding={"scaled": {"dtype": "int16", "scale_factor": 0.5}, "filled": {"_FillValue": -1}}
    )
    read = {dataset.quantity: dataset for dataset in ub.read(path, lazy=True)}
    assert isinstance(read["plain"].data, FlatRows) and not isinstance(read["scaled"].data, FlatRows) and not isinstance(read["filled"].data, FlatRows)
    expected = xr.open_dataset(path)
    for name, dataset in read.items():
        assert np.array_equal(np.asarray(dataset.data).reshape(2, 3, 4), expected[name].values, equal_nan=True), name
    netcdf3 = tmp_path / "classic.nc"
    xr.Dataset({"plain": plain_variable}).to_netcdf(netcdf3, format="NETCDF3_64BIT")
    (classic,) = ub.read(netcdf3, lazy=True)
    assert hasattr(classic.data, "compute") and np.array_equal(np.asarray(classic.data).reshape(2, 3, 4), values)


def test_complex_compound_and_non_grid_are_encoded(tmp_path):
    dims = [ub.Dimension("Y", "nm", 2), ub.Dimension("X", "nm", 3)]
    complex_data = ub.Dataset.from_ndarray(np.arange(6).reshape(2, 3) * (1 + 2j), dims, quantity="Response", units="V")
    compound = ub.Dataset.from_ndarray(np.zeros((2, 3), [("amp", "f4"), ("phase", "f4")]), dims, quantity="Fit", units="")
    compound.data["amp"] = np.arange(6).reshape(6, 1)
    indices = np.array([[0, 0], [1, 0], [0, 1]], np.uint32)
    sparse = ub.Dataset(np.arange(3.0).reshape(3, 1), ub.Ancillary.from_table(["x", "y"], ["m", "m"], indices, indices * 2.0), ub.Ancillary([ub.Dimension("arb", "a.u.", [0.0])]), quantity="Sparse", units="A")
    out = ub.write([complex_data, compound, sparse], tmp_path / "encoded.nc")
    read = {dataset.quantity: dataset for dataset in ub.read(out)}
    assert np.array_equal(read["Response"].data, complex_data.data) and read["Response"].dtype.kind == "c"
    assert read["Fit"].dtype.names == ("amp", "phase") and np.array_equal(read["Fit"].data["amp"], compound.data["amp"])
    assert not read["Sparse"].pos.is_grid and read["Sparse"].pos.same_as(sparse.pos)


@given(dataset=datasets())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_round_trip(tmp_path, dataset):
    (back,) = ub.read(ub.write(dataset, tmp_path / "rt.nc", overwrite=True))
    assert_exact_round_trip(back, dataset)


def test_xarray_engine_opens_h5usid_lazily(xr, shared_data, h5py_reads):
    opened = xr.open_dataset(shared_data / "usid" / "SingFreqPFM_0003.h5", engine="usid")
    assert not any(name.endswith("Raw_Data") for name in h5py_reads)  # only ancillaries read at open
    assert list(opened.data_vars) == ["HeightRetrace", "AmplitudeRetrace", "DeflectionRetrace", "PhaseRetrace"]
    assert opened["HeightRetrace"].dims == ("Y", "X") and opened["X"].attrs["units"] == "m"  # USID's size-1 placeholder is no dim to xarray
    expected = ub.read(shared_data / "usid" / "SingFreqPFM_0003.h5")[0].to_ndarray(squeeze=True)
    assert np.array_equal(opened["HeightRetrace"].values, expected)
    force = xr.open_dataarray(shared_data / "usid" / "AFM_Force_Curve.h5", engine="usid")
    assert force.dims == ("Z",) and force.attrs["quantity"] == "Deflection"  # one curve: its single position is no dim either


def test_xarray_engine_load_loads_and_indexes_like_numpy(xr, tmp_path):
    """`.load()` gives numpy-backed data (not dask); any basic index reads only the rows it needs and equals numpy's."""
    expected = np.arange(7 * 5 * 3 * 4, dtype=np.float32).reshape(7, 5, 3, 4)
    dataset = ub.Dataset.from_ndarray(expected, [ub.Dimension("Z", "m", 7), ub.Dimension("Y", "m", 5), ub.Dimension("X", "m", 3)], [ub.Dimension("V", "V", 4)], quantity="I", units="A")
    path = ub.write(dataset, tmp_path / "map.h5")
    loaded = xr.open_dataset(path, engine="usid").load()
    assert type(loaded["I"].variable._data) is np.ndarray and np.array_equal(loaded["I"].values, expected)
    opened = xr.open_dataarray(path, engine="usid")
    for key in [np.s_[2], np.s_[1:4, ::2], np.s_[::-2, 1, :, 3], np.s_[5:2], np.s_[-1, -1, -1, -1], np.s_[..., 1:3]]:
        assert np.array_equal(opened[key].values, expected[key]), key
    assert hasattr(xr.open_dataarray(path, engine="usid", chunks={}).data, "compute")  # dask only when asked for


def test_to_and_from_xarray_in_memory(xr):
    dims = [ub.Dimension("Y", "nm", 2), ub.Dimension("Y", "V", [0.0, 1.0, 3.0])]
    dataset = ub.Dataset.from_ndarray(np.arange(6.0).reshape(2, 3), dims[:1], dims[1:], quantity="dI/dV", units="S")
    array = netcdf.to_xarray(dataset)
    assert array.dims == ("Y", "Y_spectroscopic") and array.name == "dI_dV"
    (back,) = netcdf.from_xarray(array)
    assert back.pos.same_as(dataset.pos) and back.spec.same_as(dataset.spec) and back.quantity == "dI/dV"


def _encoded_file(path):
    dims = [ub.Dimension("Y", "nm", 2), ub.Dimension("X", "nm", 3)]
    complex_data = ub.Dataset.from_ndarray(np.arange(6).reshape(2, 3) * (1 + 2j), dims, quantity="Response", units="V")
    compound = ub.Dataset.from_ndarray(np.zeros((2, 3), [("amp", "f4"), ("phase", "f4")]), dims, quantity="Fit", units="")
    indices = np.array([[0, 0], [1, 0], [0, 1]], np.uint32)
    sparse = ub.Dataset(np.arange(3.0).reshape(3, 1), ub.Ancillary.from_table(["x", "y"], ["m", "m"], indices, indices * 2.0), ub.Ancillary([ub.Dimension("arb", "a.u.", [0.0])]), quantity="Sparse", units="A")
    return ub.write([complex_data, compound, sparse], path)


@pytest.mark.parametrize(("variable", "attribute", "value"), [
    ("Response_real", "usid_complex", "Response"),  # no part: KeyError / ValueError before
    ("Response_imag", "usid_complex", "Other:imag"),  # a real part without its imaginary one: KeyError 'real'
    ("Response_real", "usid_complex", "Response:modulus"),
    ("Fit_amp", "usid_compound", '["Fit", "amp", 7]'),  # TypeError before
    ("Fit_amp", "usid_compound", '["Fit", "amp", [["amp", "<zz"], ["phase", "<f4"]]]'),
    ("Fit_phase", "usid_compound", '["Fit", "gain", [["amp", "<f4"], ["phase", "<f4"]]]'),
    ("Sparse", "usid_non_grid", "[]"),  # ValueError: need at least one array to stack
    ("Sparse", "usid_non_grid", '["x", "missing"]'),
    ("Sparse", "usid_non_grid", "{not json"),
])
@pytest.mark.parametrize("lazy", [False, True])
def test_damaged_usid_attributes_are_one_clean_error(tmp_path, variable, attribute, value, lazy):
    """Our own netCDF attributes, damaged: one error naming the file, never KeyError or TypeError (issue 22)."""
    netCDF4 = need("netCDF4")
    from usidbridge.errors import UsidBridgeError

    path = _encoded_file(tmp_path / "encoded.nc")
    with netCDF4.Dataset(path, "a") as file:
        file.variables[variable].setncattr(attribute, value)
    before = path.read_bytes()
    with pytest.raises(UsidBridgeError, match=str(path).replace("\\", "\\\\")):
        ub.read(path, lazy=lazy)
    assert path.read_bytes() == before


def test_variables_are_named_after_their_dataset_and_placeholders_come_back(xr, tmp_path):
    """Two channels of one quantity (Nanonis: Z forward, Z backward) keep their names, not Z and Z_;
    the placeholder dims dropped for xarray come back on reading (issue 23)."""
    image = [ub.Dimension.uniform("Y", "m", 3, scale=1e-9), ub.Dimension.uniform("X", "m", 4, scale=1e-9)]
    forward = ub.Dataset.from_ndarray(np.zeros((3, 4)), image, name="Z forward", quantity="Z", units="m")
    backward = ub.Dataset.from_ndarray(np.ones((3, 4)), image, name="Z backward", quantity="Z", units="m")
    spectrum = ub.Dataset.from_ndarray(np.arange(5.0).reshape(1, 5), [ub.Dimension("X", "m", [2e-9])], [ub.Dimension("Bias", "V", np.linspace(-1, 1, 5))], quantity="Current", units="A")
    combined = netcdf.to_xarray_dataset([forward, backward, spectrum])
    assert sorted(combined.data_vars) == ["Current", "Z_backward", "Z_forward"]
    assert combined["Z_forward"].dims == ("Y", "X") and combined["Current"].dims == ("Bias",)
    for dataset, back in zip([forward, backward, spectrum], ub.read(ub.write([forward, backward, spectrum], tmp_path / "named.nc"))):
        assert_exact_round_trip(back, dataset)


NETCDF_DIMS = ("y", "x", "energy")
NETCDF_TYPES = st.sampled_from(["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8"])
NETCDF_TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=6)
NETCDF_ATTRIBUTES = st.dictionaries(
    st.sampled_from(["units", "long_name", "quantity", "comment", "gain", "a", "b_2"]),
    st.one_of(
        st.tuples(st.just("char"), NETCDF_TEXT),
        st.tuples(st.just("string"), st.one_of(NETCDF_TEXT, st.lists(NETCDF_TEXT, min_size=1, max_size=3))),
        st.tuples(st.just("number"), st.tuples(NETCDF_TYPES, st.integers(1, 3), st.integers(0, 100))),
    ),
    max_size=3,
)
# An attribute of ours, and attributes that make xarray decode a variable (True): files with those are read through xarray
SPECIAL = st.sampled_from([None, None, None, None, None, None, (("usid_spectroscopic", '["x"]'), False), (("units", "days since 2000-01-01"), True), (("scale_factor", 0.5), True), (("units", "seconds"), True)])


def _set_attributes(variable, attributes) -> None:
    for key, (kind, value) in attributes.items():
        if kind == "char":
            variable.setncattr(key, value)
        elif kind == "string":
            variable.setncattr_string(key, value)
        else:
            dtype, count, start = value
            variable.setncattr(key, np.arange(start, start + count).astype(dtype))


@st.composite
def netcdf4_files(draw):
    """The layout of a netCDF-4 file as the netCDF4 library writes it: dims, coordinate variables for
    some, data variables of any number type over some dims in any order, attributes of every kind."""
    sizes = {dim: draw(st.integers(1, 3)) for dim in NETCDF_DIMS}
    coordinates = {dim: (draw(st.sampled_from(["f4", "f8", "i4"])), draw(NETCDF_ATTRIBUTES), draw(SPECIAL)) for dim in NETCDF_DIMS if draw(st.booleans())}
    variables = {}
    for number in range(draw(st.integers(1, 3))):
        dims = tuple(draw(st.permutations(NETCDF_DIMS))[: draw(st.integers(0, 3))])
        dtype = draw(NETCDF_TYPES)
        fill = np.nan if dtype.startswith("f") and draw(st.booleans()) else None
        variables[f"v{number}"] = (dims, dtype, fill, draw(NETCDF_ATTRIBUTES), draw(SPECIAL))
    return sizes, coordinates, variables


def _write_netcdf4(path, layout) -> None:
    netCDF4 = need("netCDF4")
    sizes, coordinates, variables = layout
    with netCDF4.Dataset(path, "w") as file:
        for dim, size in sizes.items():
            file.createDimension(dim, size)
        for name, (dtype, attributes, special) in coordinates.items():
            variable = file.createVariable(name, dtype, (name,))
            variable[:] = np.linspace(0.5, 3.5, sizes[name]).astype(dtype)
            _set_attributes(variable, attributes)
            if special:
                variable.setncattr(*special[0])
        for name, (dims, dtype, fill, attributes, special) in variables.items():
            variable = file.createVariable(name, dtype, dims, fill_value=fill)
            shape = tuple(sizes[dim] for dim in dims)
            variable[...] = (np.arange(int(np.prod(shape))) % 100).astype(dtype).reshape(shape)
            _set_attributes(variable, attributes)
            if special:
                variable.setncattr(*special[0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(layout=netcdf4_files(), lazy=st.booleans())
def test_netcdf4_files_read_without_xarray_as_through_xarray(tmp_path_factory, layout, lazy):
    """A netCDF-4 file xarray would give as stored is read with h5netcdf alone: the Datasets are the same as
    xarray's (engine netCDF4), data, dtype, dims, units, names and metadata; files xarray decodes go through it."""
    path = tmp_path_factory.mktemp("nc") / "layout.nc"
    _write_netcdf4(path, layout)
    file, variables = netcdf._listed_variables(path)
    decoded = any(entry[-1] and entry[-1][1] for group in layout[1:] for entry in group.values())
    assert netcdf._without_xarray(variables) == (not decoded)
    file.close()
    try:
        through_xarray = netcdf.read_file(path, lazy=lazy, engine="netcdf4")
    except ub.errors.UnreadableFileError:
        event("no data variable with a dim")
        with pytest.raises(ub.errors.UnreadableFileError):
            netcdf.read_file(path, lazy=lazy)
        return
    event("read through xarray" if decoded else "read without xarray")
    read = netcdf.read_file(path, lazy=lazy)
    assert [dataset.source for dataset in read] == [dataset.source for dataset in through_xarray]
    for mine, theirs in zip(read, through_xarray):
        assert (mine.name, mine.quantity, mine.units, mine.dtype) == (theirs.name, theirs.quantity, theirs.units, theirs.dtype)
        assert mine.pos.same_as(theirs.pos) and mine.spec.same_as(theirs.spec)
        assert np.array_equal(np.asarray(mine.data), np.asarray(theirs.data), equal_nan=mine.dtype.kind == "f")
        assert same_metadata(mine.metadata, theirs.metadata), (mine.metadata, theirs.metadata)


def test_plain_netcdf4_file_converts_without_xarray(xr, tmp_path):
    """Importing xarray (and pandas) costs a fresh process 0.4 s: a netCDF-4 file it would read as stored
    converts without it, lazily and eagerly; a file with a time coordinate still goes through xarray."""
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    plain = xr.DataArray(data, dims=("y", "x", "energy"), coords={"energy": ("energy", [1.0, 2.0, 3.0, 4.0], {"units": "eV"})}, name="counts")
    plain.to_netcdf(tmp_path / "plain.nc")
    plain.assign_coords(y=("y", np.array(["2026-01-01", "2026-01-02"], dtype="datetime64[ns]"))).to_netcdf(tmp_path / "times.nc")
    script = (
        "import sys, usidbridge as ub\n"
        "for path, lazy in ((sys.argv[1], True), (sys.argv[1], False), (sys.argv[2], True)):\n"
        "    dataset = ub.read(path, lazy=lazy)[0]\n"
        "    ub.write(dataset, path + f'.{lazy}.h5')\n"
        "    print(sorted({name.split('.')[0] for name in sys.modules} & {'xarray', 'pandas', 'dask'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "plain.nc"), str(tmp_path / "times.nc")], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[:3] == ["[]", "[]", "['dask', 'pandas', 'xarray']"]
    for lazy in (True, False):
        (back,) = ub.read(tmp_path / f"plain.nc.{lazy}.h5")
        assert np.array_equal(back.to_ndarray(), data) and back.spec.dims[0].units == "eV" and back.quantity == "counts"
