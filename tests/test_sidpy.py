"""The pycroscopy bridge: to_sidpy / from_sidpy against sidpy itself, and compliant h5USID from sidpy."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import usidbridge as ub

from conftest import need
from strategies import datasets


@pytest.fixture(scope="module")
def sidpy():
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    return need("sidpy")


@pytest.fixture(scope="module")
def bridge(sidpy):
    from usidbridge.converters import sidpy as bridge

    return bridge


def test_sidpy_made_by_hand_becomes_compliant_h5usid(sidpy, bridge, tmp_path, usid):
    data = np.random.default_rng(0).normal(size=(4, 5, 16))
    made = sidpy.Dataset.from_array(data, title="EELS_map")
    made.quantity, made.units = "Intensity", "counts"
    made.set_dimension(0, sidpy.Dimension(np.arange(4) * 2.0, name="y", quantity="Length", units="nm", dimension_type="spatial"))
    made.set_dimension(1, sidpy.Dimension(np.arange(5) * 2.0, name="x", quantity="Length", units="nm", dimension_type="spatial"))
    made.set_dimension(2, sidpy.Dimension(np.linspace(100, 130, 16), name="energy_loss", quantity="Energy", units="eV", dimension_type="spectral"))
    made.metadata = {"experiment": {"voltage": 200e3}}
    dataset = bridge.from_sidpy(made)
    assert dataset.pos.labels == ("y", "x") and dataset.spec.labels == ("energy_loss",)
    assert (dataset.quantity, dataset.units, dataset.name) == ("Intensity", "counts", "EELS_map")
    path = ub.write(dataset, tmp_path / "from_sidpy.h5")
    assert ub.validate(path).ok
    (back,) = ub.read(path)
    assert np.array_equal(back.to_ndarray(), data) and back.metadata["sidpy"] == {"experiment": {"voltage": 200e3}}
    import h5py

    with h5py.File(path, "r") as file:
        (main,) = usid.hdf_utils.get_all_main(file)
        assert usid.USIDataset(main).get_n_dim_form().shape == (4, 5, 16)


def test_real_usid_file_to_sidpy_and_back(sidpy, bridge, shared_data):
    (dataset,) = ub.read(shared_data / "usid" / "simulated_STEM_Image.h5")
    made = bridge.to_sidpy(dataset)
    assert made.data_type.name == "IMAGE" and [made._axes[i].dimension_type.name for i in range(made.ndim)] == ["SPATIAL", "SPATIAL", "SPECTRAL"]
    back = bridge.from_sidpy(made)
    assert back.pos.same_as(dataset.pos) and back.spec.same_as(dataset.spec) and np.array_equal(back.to_ndarray(), dataset.to_ndarray())


def test_spectroscopic_override(sidpy, bridge):
    made = sidpy.Dataset.from_array(np.zeros((3, 4)))
    assert bridge.from_sidpy(made).spec.size == 1  # UNKNOWN dims are positions
    assert bridge.from_sidpy(made, spectroscopic=[made._axes[1].name]).spec.size == 4


@given(dataset=datasets(allow_non_grid=False))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_round_trips_random_datasets(sidpy, bridge, dataset):
    back = bridge.from_sidpy(bridge.to_sidpy(dataset))
    assert back.pos.same_as(dataset.pos) and back.spec.same_as(dataset.spec)
    assert np.asarray(back.to_ndarray()).tobytes() == np.asarray(dataset.to_ndarray()).tobytes()
    assert (back.quantity, back.units, back.dtype) == (dataset.quantity, dataset.units, dataset.dtype)
