"""Metadata arrives intact: random values (text, numbers, NaN, complex, bytes, None, numpy arrays,
lists, nested dicts) written by each format that carries metadata and read back."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import usidbridge as ub
from usidbridge.roundtrip import FORMAT_NAMESPACES

from conftest import need, same_metadata
from strategies import metadata

FORMATS = {"h5usid": ".h5", "nexus": ".nxs", "netcdf": ".nc", "tiff": ".tif", "hyperspy": ".hspy"}


HDF5_FORMATS = {"h5usid", "nexus"}


def as_hdf5_attributes(value, key=None):
    """What HDF5 formats give back: a list of numbers is stored as a numeric array (as pyUSID and
    other HDF5 tools store and read it), so it comes back as one; everything else as it was. A
    section that cannot be an HDF5 group (its name has '/' or is '.') is one encoded value, exact."""
    if isinstance(value, dict):
        if key is not None and ("/" in key or key == "."):
            return value
        return {name: as_hdf5_attributes(item, name) for name, item in value.items()}
    if isinstance(value, list) and value and all(isinstance(item, (bool, int, float, complex)) for item in value):
        array = np.asarray(value)
        if array.dtype.kind in "biufc" and array.ndim == 1:
            return array
    return value


def dataset_with(values: dict) -> ub.Dataset:
    dims = [ub.Dimension("Y", "nm", 2), ub.Dimension("X", "nm", 3)]
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    return ub.Dataset.from_ndarray(data, dims, [ub.Dimension("Bias", "V", 4)], quantity="Current", units="A", metadata=values)


@pytest.mark.parametrize("format", FORMATS)
@given(values=metadata())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_metadata_round_trip(tmp_path, format, values):
    values = {key: value for key, value in values.items() if key not in FORMAT_NAMESPACES}
    (back,) = ub.read(ub.write(dataset_with(values), tmp_path / f"meta{FORMATS[format]}", format=format, overwrite=True))
    mine = {key: value for key, value in back.metadata.items() if key not in FORMAT_NAMESPACES}
    expected = as_hdf5_attributes(values) if format in HDF5_FORMATS else values
    assert same_metadata(mine, expected), (mine, expected)


@pytest.mark.parametrize("format", FORMATS)
def test_values_json_and_hyperspy_had_no_place_for(tmp_path, format):
    """Regressions: complex metadata stopped netCDF and TIFF writes (TypeError); arrays came back as
    lists and NaN as "nan"; HyperSpy broke on its reserved names and decoded bytes as UTF-8."""
    values = {
        "calibration": 1 + 2j,
        "offsets": np.array([[0.5, np.nan]], np.float32),
        "temperature": float("nan"),
        "raw": b"\xff\x00",
        "names": np.array(["a", "µ"]),
        "__dict__": 1,
        "_bs_z": "x",
        "as_dictionary": [1, "a", None],
        "a b": 1,
        "a_b": 2,
    }
    (back,) = ub.read(ub.write(dataset_with(values), tmp_path / f"meta{FORMATS[format]}", format=format))
    mine = {key: value for key, value in back.metadata.items() if key not in FORMAT_NAMESPACES}
    expected = as_hdf5_attributes(values) if format in HDF5_FORMATS else values
    assert same_metadata(mine, expected), (mine, expected)


def test_netcdf_metadata_written_as_plain_json_still_reads(tmp_path):
    """Files written before the tags: plain JSON comes back as it is."""
    import h5py

    path = ub.write(dataset_with({}), tmp_path / "old.nc")
    with h5py.File(path, "r+") as file:
        file["Current"].attrs["usid_metadata"] = '{"gain": [1.5, 2.5], "t": "nan", "note": {"a": 1}}'
    (back,) = ub.read(path)
    assert back.metadata == {"gain": [1.5, 2.5], "t": "nan", "note": {"a": 1}}


LARGE_METADATA_WRITERS = {"h5usid": (".h5", {}), "nexus": (".nxs", {}), "dual": (".nxs", {"dual": True}), "netcdf": (".nc", {}), "hyperspy": (".hspy", {})}


def large_metadata() -> dict:
    """Items far beyond an HDF5 attribute's 64 KiB: one array of 1 MB, one text of 1 MB, 5,000 keys (150 kB of attributes on one group)."""
    rng = np.random.default_rng(19)
    return {
        "spectrum": rng.random(131_072),
        "note": "".join(rng.choice(list("abcdefgh µÅ;=\n"), 1_000_000)),
        "tags": {f"tag_{index:05d}": index * 0.5 for index in range(5_000)},
    }


@pytest.mark.parametrize("writer", LARGE_METADATA_WRITERS)
def test_metadata_of_any_size(tmp_path, writer, usid):
    """A DM4 tag of 230 kB, an Igor wave note or a long parameter list stopped every HDF5 writer with
    "object header message is too large"; now each item is stored and read back identical."""
    import h5py

    suffix, options = LARGE_METADATA_WRITERS[writer]
    values = large_metadata()
    path = ub.write(dataset_with(values), tmp_path / f"large{suffix}", format="nexus" if writer == "dual" else writer, **options)
    (back,) = ub.read(path)
    mine = {key: value for key, value in back.metadata.items() if key not in FORMAT_NAMESPACES}
    assert same_metadata(mine, values)
    if writer == "h5usid":
        with h5py.File(path, "r") as file:
            (main,) = usid.hdf_utils.get_all_main(file)
            get_attributes = need("sidpy.hdf.hdf_utils").get_attributes  # pyUSID reads attributes through sidpy
            stored = get_attributes(main.parent["Metadata"])
            assert stored["note"] == values["note"] and np.array_equal(stored["spectrum"], values["spectrum"])
            assert get_attributes(main.parent["Metadata/tags"]) == values["tags"]
