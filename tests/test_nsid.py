"""NSID (pyNSID): read against pyNSID's own reading, written and read back by pyNSID, converted to
h5USID; validate says an NSID file is NSID and how to convert it."""

import h5py
import numpy as np
import pytest

import usidbridge as ub
from usidbridge import registry

from conftest import need
from strategies import datasets as random_datasets
from hypothesis import HealthCheck, given, settings

NSID = "pycroscopy/bfo_iv_final_nsid.hf5"


@pytest.fixture(scope="module")
def pynsid():
    return need("pyNSID.io.hdf_utils")


def test_reads_like_pynsid(shared_data, pynsid, tmp_path, usid):
    path = shared_data / NSID
    assert registry.detect(path).name == "nsid"
    (dataset,) = ub.read(path)
    with h5py.File(path, "r") as file:
        (main,) = pynsid.get_all_main(file)
        theirs = pynsid.read_h5py_dataset(main)
        assert np.array_equal(dataset.to_ndarray(), np.asarray(theirs))
        kinds = [theirs._axes[axis].dimension_type.name for axis in range(theirs.ndim)]
        names = [str(theirs._axes[axis].name) for axis in range(theirs.ndim)]
    assert [dim.name for dim in dataset.pos.dims] == [name for name, kind in zip(names, kinds) if kind == "SPATIAL"]
    assert [dim.name for dim in dataset.spec.dims] == [name for name, kind in zip(names, kinds) if kind == "SPECTRAL"]
    assert (dataset.quantity, dataset.units) == ("log J", "$A/m^2$")
    out = ub.convert(path, tmp_path / "iv.h5")
    assert ub.validate(out).ok
    with h5py.File(out, "r") as file:
        assert usid.USIDataset(usid.hdf_utils.get_all_main(file)[0]).get_n_dim_form().shape == (50, 50, 53)
    (lazy,) = ub.read(path, lazy=True)
    assert lazy.is_lazy and np.array_equal(np.asarray(lazy.to_ndarray()), dataset.to_ndarray())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(dataset=random_datasets(allow_non_grid=False))
def test_written_nsid_reads_back_in_pynsid_and_in_usidbridge(tmp_path, pynsid, dataset):
    if dataset.dtype.fields:
        return  # sidpy holds plain numbers
    path = ub.write(dataset, tmp_path / "written.hf5", format="nsid", overwrite=True)
    expected = np.asarray(dataset.to_ndarray())
    with h5py.File(path, "r") as file:
        (main,) = pynsid.get_all_main(file)
        assert main.dtype == dataset.dtype and np.array_equal(main[()], expected, equal_nan=True)
        theirs = np.asarray(pynsid.read_h5py_dataset(main))  # pyNSID narrows what it reads (complex128 to complex64)
        with np.errstate(over="ignore", invalid="ignore"):
            assert theirs.shape == expected.shape and np.array_equal(theirs, expected.astype(theirs.dtype), equal_nan=True)
    (back,) = ub.read(path)
    assert [(dim.name, dim.units) for dim in back.dims] == [(dim.name, dim.units) for dim in dataset.dims]
    assert back.pos.same_as(dataset.pos) and back.spec.same_as(dataset.spec)
    assert (back.quantity, back.units, back.dtype) == (dataset.quantity, dataset.units, dataset.dtype)


def test_validate_says_an_nsid_file_is_nsid(shared_data):
    report = ub.validate(shared_data / NSID)
    (finding,) = report.findings
    assert not report.ok and finding.rule == "F01" and "format nsid" in finding.message and "usidbridge convert" in finding.message
