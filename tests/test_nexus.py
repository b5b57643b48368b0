"""NeXus: the real .nxs files against HyperSpy's reader; our files through nexusformat and HyperSpy; dual files."""

import re

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import usidbridge as ub
from usidbridge.errors import NotUSIDError, UnreadableFileError

from conftest import assert_exact_round_trip, need
from strategies import datasets
from test_cli import run


def hyperspy_nexus(path):
    hs = need("hyperspy.api")
    signals = hs.load(path, file_format="nexus", nxdata_only=True)
    return signals if isinstance(signals, list) else [signals]


@pytest.mark.parametrize("name", ["simple_signal.nxs", "saved_multi_signal.nxs"])
def test_real_files_match_hyperspy(shared_data, name):
    ours = ub.read(shared_data / "nexus" / name)
    theirs = hyperspy_nexus(shared_data / "nexus" / name)
    assert len(ours) == len(theirs)
    for dataset, signal in zip(ours, theirs):
        assert dataset.quantity == signal.metadata.General.title
        assert np.array_equal(dataset.to_ndarray(), signal.data)
        for dim, axis in zip(dataset.dims, signal.axes_manager._axes):
            assert dim.size == axis.size and np.allclose(dim.values, axis.axis)
        navigation = [axis.size for axis in signal.axes_manager._axes if axis.navigate]
        assert list(dataset.pos.shape) == navigation


def test_our_files_through_nexusformat_and_hyperspy(tmp_path):
    nx = need("nexusformat.nexus")
    dims = [ub.Dimension.uniform("Y", "um", 4, offset=-1, scale=0.5), ub.Dimension.uniform("X", "um", 5, scale=0.25)]
    energy = ub.Dimension("Energy", "eV", [100.0, 101.0, 103.0, 107.0, 115.0, 131.0])
    data = np.random.default_rng(1).normal(size=(4, 5, 6))
    dataset = ub.Dataset.from_ndarray(data, dims, [energy], quantity="Counts", units="counts", metadata={"sample": "Si", "stage": {"z": 1.5}})
    out = ub.write(dataset, tmp_path / "map.nxs")
    root = nx.nxload(str(out))
    plottable = root.plottable_data
    assert np.array_equal(plottable.nxsignal.nxvalue, data)
    assert [axis.nxname for axis in plottable.nxaxes] == ["Y", "X", "Energy"]
    assert plottable.nxaxes[2].attrs["units"] == "eV" and np.array_equal(plottable.nxaxes[2].nxvalue, energy.values)
    (signal,) = hyperspy_nexus(out)
    assert np.array_equal(signal.data, data)
    axes = signal.axes_manager._axes
    assert [axis.navigate for axis in axes] == [True, True, False] or [axis.size for axis in axes] == [4, 5, 6]
    assert axes[0].units == "um" and np.allclose(axes[1].axis, dims[1].values)
    (back,) = ub.read(out)
    assert back.dims == dataset.dims and back.metadata["sample"] == "Si" and back.metadata["stage"] == {"z": 1.5}


def test_descending_and_non_uniform_axes_come_back_in_order(tmp_path):
    dims = [ub.Dimension("T", "K", [300.0, 250.0, 200.0, 100.0])]
    dataset = ub.Dataset.from_ndarray(np.arange(4.0), dims, quantity="R", units="Ohm")
    (back,) = ub.read(ub.write(dataset, tmp_path / "desc.nxs"))
    assert back.pos.dims[0].values.tolist() == [300.0, 250.0, 200.0, 100.0]
    assert back.to_ndarray(squeeze=True).tolist() == [0.0, 1.0, 2.0, 3.0]


def nexus_by_hand(path, style):
    """NeXus files as other facilities write them, made with h5py."""
    with h5py.File(path, "w") as file:
        entry = file.create_group("scan")
        entry.attrs["NX_class"] = b"NXentry"
        entry["title"] = b"test scan"
        second = entry.create_group("second")
        second.attrs["NX_class"] = "NXdata"
        second.attrs["signal"] = "other"
        second["other"] = np.ones(3)
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        counts = data.create_dataset("counts", data=np.arange(12.0).reshape(3, 4))
        counts.attrs["units"] = "counts"
        data.create_dataset("two_theta", data=[10.0, 20.0, 30.0]).attrs["units"] = "deg"
        data.create_dataset("chan", data=[0.0, 1.0, 2.0, 3.0, 4.0])
        data["errors"] = np.sqrt(np.arange(12.0).reshape(3, 4))
        if style == "modern-fixed-string":
            data.attrs["signal"] = np.bytes_(b"counts")
            data.attrs["axes"] = np.array([b"two_theta", b"chan"])
        elif style == "modern-vlen-string":
            data.attrs["signal"] = "counts"
            data.attrs["axes"] = ["two_theta", "."]
            data.attrs["chan_indices"] = 1
        elif style == "old":
            counts.attrs["signal"] = 1
            data["two_theta"].attrs["axis"] = 1
            data["two_theta"].attrs["primary"] = 1
            data["chan"].attrs["axis"] = 2
        elif style == "no-axes":
            data.attrs["signal"] = "counts"
        file.attrs["default"] = "scan"
        entry.attrs["default"] = "data"


@pytest.mark.parametrize("style", ["modern-fixed-string", "modern-vlen-string", "old", "no-axes"])
def test_other_facilities_files(tmp_path, style):
    path = tmp_path / f"{style}.nxs"
    nexus_by_hand(path, style)
    read = ub.read(path)
    assert [d.quantity for d in read] == ["counts", "counts errors", "other"]  # @default first, then file order
    counts, errors = read[0], read[1]
    assert np.array_equal(counts.to_ndarray(squeeze=True), np.arange(12.0).reshape(3, 4))
    assert np.array_equal(errors.to_ndarray(squeeze=True), np.sqrt(np.arange(12.0).reshape(3, 4)))
    two_theta, chan = counts.pos.dims
    if style == "no-axes":
        assert two_theta.values.tolist() == [0, 1, 2] and chan.values.tolist() == [0, 1, 2, 3]
    else:
        assert (two_theta.name, two_theta.units, two_theta.values.tolist()) == ("two_theta", "deg", [10.0, 20.0, 30.0])
        assert chan.values.tolist() == ([0.5, 1.5, 2.5, 3.5] if style != "old" or True else None)  # 5 bin edges → 4 centres
    assert counts.units == "counts" and counts.metadata["nexus"]["entry_fields"]["title"] == "test scan"
    spectrum = ub.read(path, spectroscopic=1)[0]
    assert [d.name for d in spectrum.spec.dims] == [chan.name]


def test_histogram_edges_become_centres(tmp_path):
    path = tmp_path / "edges.nxs"
    nexus_by_hand(path, "modern-fixed-string")
    counts = ub.read(path)[0]
    assert counts.pos.dims[1].values.tolist() == [0.5, 1.5, 2.5, 3.5]


@given(dataset=datasets())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_round_trip_is_exact(tmp_path, dataset):
    (back,) = ub.read(ub.write(dataset, tmp_path / "rt.nxs", overwrite=True))
    back.metadata.pop("nexus")
    assert_exact_round_trip(back, dataset)


def test_dual_file_is_usid_and_nexus(shared_data, tmp_path, usid):
    """A dual file holds the same N-D NXdata as a plain NeXus export (a 49 × 6 × 1024 map stays
    N-D, issue 23), and each Main dataset is a virtual view of that signal: the data is stored
    once, pyUSID reads the Main datasets as plain ones, and the file survives being renamed."""
    nx = need("nexusformat.nexus")
    source = ub.read(shared_data / "usid" / "SingFreqPFM_0003.h5") + ub.read(shared_data / "usid" / "AFM_Force_Curve.h5")
    dual = ub.write(source, tmp_path / "dual.h5", format="nexus", dual=True)
    plain = ub.write(source, tmp_path / "plain.nxs")
    report = ub.validate(dual)
    assert report.ok and not report.warnings and len(report.main_datasets) == 5
    with h5py.File(dual, "r") as file, h5py.File(plain, "r") as reference:
        assert sorted(file["entry"]) == sorted(reference["entry"])
        for name, group in reference["entry"].items():
            assert file["entry"][name]["data"].shape == group["data"].shape and not file["entry"][name]["data"].is_virtual
            assert np.array_equal(file["entry"][name]["data"][()], group["data"][()])
            assert file["entry"][name].attrs.keys() == group.attrs.keys()
        mains = sorted(usid.hdf_utils.get_all_main(file), key=lambda main: main.attrs["quantity"])
        assert len(mains) == 5 and all(main.is_virtual and usid.hdf_utils.check_if_main(main) for main in mains)
        for main, mine in zip(mains, sorted(source, key=lambda d: d.quantity)):
            assert np.array_equal(usid.USIDataset(main)[()], np.asarray(mine.data))
        stored = sum(dataset.id.get_storage_size() for dataset in _datasets(file))
    with h5py.File(plain, "r") as reference:
        assert stored < 1.5 * sum(dataset.id.get_storage_size() for dataset in _datasets(reference)) + 2**20  # the data once, plus USID's tables
    root = nx.nxload(str(dual))
    assert root.plottable_data.nxsignal.shape == nx.nxload(str(plain)).plottable_data.nxsignal.shape
    renamed = dual.rename(tmp_path / "moved.h5")
    as_nexus, as_usid = ub.read(renamed, format="nexus"), ub.read(renamed, format="h5usid")
    assert len(as_nexus) == len(as_usid) == 5
    for nexus_side, usid_side, theirs in zip(*(sorted(datasets, key=lambda d: d.quantity) for datasets in (as_nexus, as_usid, source))):
        assert nexus_side.pos.same_as(theirs.pos) and np.array_equal(nexus_side.to_ndarray(), theirs.to_ndarray())
        assert usid_side.pos.same_as(theirs.pos) and np.array_equal(usid_side.to_ndarray(), theirs.to_ndarray())
    result = run("convert", shared_data / "usid" / "AFM_Force_Curve.h5", tmp_path / "cli_dual.h5", "--to", "nexus", "-w", "dual=true")
    assert result.returncode == 0 and ub.validate(tmp_path / "cli_dual.h5").ok


def test_a_dual_spectrum_image_is_n_dimensional_for_hyperspy(shared_data, tmp_path):
    """The issue's case: the DM spectrum image (49 × 6 positions × 1024 channels) exported dual is
    read by HyperSpy as the same (6, 49|1024) signal as the plain NeXus export."""
    hs = need("hyperspy.api")
    source = ub.read(shared_data / "rosettasciio/dm/EELS_spectrum_image.dm3")
    dual = ub.write(source, tmp_path / "si_dual.nxs", format="nexus", dual=True)
    plain = ub.write(source, tmp_path / "si.nxs")
    with h5py.File(dual, "r") as file:
        (group,) = file["entry"].values()
        assert group["data"].shape == (49, 6, 1024)
    mine, theirs = hs.load(dual), hs.load(plain)
    mine, theirs = (signal[0] if isinstance(signal, list) else signal for signal in (mine, theirs))
    assert mine.axes_manager.shape == theirs.axes_manager.shape == (6, 49, 1024)
    assert np.array_equal(mine.data, theirs.data)


def _datasets(file: h5py.File) -> list[h5py.Dataset]:
    found: list[h5py.Dataset] = []
    file.visititems(lambda _name, obj: found.append(obj) if isinstance(obj, h5py.Dataset) else None)
    return found


def test_hdf5_without_nxdata(tmp_path):
    path = tmp_path / "plain.nxs"
    with h5py.File(path, "w") as file:
        file["x"] = np.arange(3)
    with pytest.raises(NotUSIDError, match="no NXdata"):
        ub.read(path, format="nexus")


@pytest.mark.parametrize("on_signal", [True, False])
def test_interpretation_on_the_signal_or_the_group(tmp_path, on_signal):
    path = tmp_path / "interpretation.nxs"
    with h5py.File(path, "w") as file:
        data = file.create_group("entry/data")
        file["entry"].attrs["NX_class"] = "NXentry"
        data.attrs["NX_class"] = "NXdata"
        data.attrs["signal"] = "counts"
        data.attrs["axes"] = ["y", "x", "energy"]
        counts = data.create_dataset("counts", data=np.zeros((2, 3, 4)))
        (counts if on_signal else data).attrs["interpretation"] = "spectrum"
        for name, size in (("y", 2), ("x", 3), ("energy", 4)):
            data[name] = np.arange(size, dtype=float)
    (dataset,) = ub.read(path)
    assert dataset.pos.labels == ("y", "x") and dataset.spec.labels == ("energy",)


def test_hyperspy_and_xarray_see_the_split_without_placeholders(tmp_path, shared_data):
    """Size-1 placeholder dims are not written and @interpretation says which axes are the signal."""
    hs = need("hyperspy.api")
    xarray = need("xarray")
    image = ub.read(shared_data / "usid" / "simulated_STEM_Image.h5")[0]
    spectra = ub.Dataset.from_ndarray(np.arange(24.0).reshape(2, 3, 4), [ub.Dimension("Y", "nm", 2), ub.Dimension("X", "nm", 3)], [ub.Dimension("Energy", "eV", [1.0, 2.0, 4.0, 8.0])], quantity="Counts", units="")
    for dataset, navigation, signal_axes in ((image, 0, 2), (spectra, 2, 1)):
        path = ub.write(dataset, tmp_path / f"{dataset.quantity}.nxs", overwrite=True)
        signal = hs.load(path, reader="NeXus", nxdata_only=True)
        signal = signal[0] if isinstance(signal, list) else signal
        assert (signal.axes_manager.navigation_dimension, signal.axes_manager.signal_dimension) == (navigation, signal_axes)
        assert 1 not in signal.data.shape
        (back,) = ub.read(path)
        assert back.pos.same_as(dataset.pos) and back.spec.same_as(dataset.spec)
    with xarray.open_dataset(tmp_path / "Intensity.nxs", engine="h5netcdf", group="entry/Intensity", phony_dims="access") as opened:
        assert opened["data"].ndim == 2


def _damage_sparse(file, damage):
    table = file["entry/Sparse/usidbridge_position_indices"]
    if damage == "no axes":  # ValueError: need at least one array to stack
        table.attrs["axes"], table.attrs["labels"] = np.array([], "S1"), np.array([], "S1")
    elif damage == "missing axis":
        table.attrs["axes"] = np.array([b"x", b"gone"])
    elif damage == "axis of another length":
        del file["entry/Sparse/y"]
        file["entry/Sparse/y"] = np.arange(7.0)
    elif damage == "table of another shape":  # ModelError without the file's name
        del file["entry/Sparse/usidbridge_position_indices"]
        file["entry/Sparse/usidbridge_position_indices"] = np.zeros((3, 1, 2), np.uint32)
    elif damage == "signal of another size":
        del file["entry/Sparse/data"]
        file["entry/Sparse/data"] = np.zeros((5, 1))
    elif damage == "empty entry field":  # TypeError in the entry's metadata
        file["entry/notes"] = h5py.Empty("f8")


@pytest.mark.parametrize("damage", ["no axes", "missing axis", "axis of another length", "table of another shape", "signal of another size", "empty entry field"])
@pytest.mark.parametrize("lazy", [False, True])
def test_damaged_non_grid_positions_are_one_clean_error(tmp_path, damage, lazy):
    """Our non-grid position table in NeXus, damaged: one error naming the file (issue 22)."""
    from usidbridge.errors import UsidBridgeError

    indices = np.array([[0, 0], [1, 0], [0, 1]], np.uint32)
    sparse = ub.Dataset(np.arange(3.0).reshape(3, 1), ub.Ancillary.from_table(["x", "y"], ["m", "m"], indices, indices * 2.0), ub.Ancillary([ub.Dimension("arb", "a.u.", [0.0])]), quantity="Sparse", units="A")
    path = ub.write(sparse, tmp_path / "sparse.nxs")
    with h5py.File(path, "a") as file:
        _damage_sparse(file, damage)
    if damage == "empty entry field":  # not about the data: the file still reads, the field is left out
        (dataset,) = ub.read(path, lazy=lazy)
        assert dataset.pos.same_as(sparse.pos)
        return
    with pytest.raises(UsidBridgeError, match=re.escape(str(path))):
        ub.read(path, lazy=lazy)


@pytest.mark.parametrize("lazy", [False, True])
def test_a_signal_without_a_dataspace_is_a_clean_error(tmp_path, lazy):
    """An NXdata signal replaced by one with a null dataspace (h5py.Empty): one error naming the file."""
    dataset = ub.Dataset.from_ndarray(np.arange(32.0).reshape(2, 2, 8), [ub.Dimension("Y", "m", 2), ub.Dimension("X", "m", 2)], [ub.Dimension("E", "eV", 8)])
    path = ub.write(dataset, tmp_path / "empty.nxs")
    with h5py.File(path, "r+") as file:
        attributes = dict(file["entry/generic/data"].attrs)
        del file["entry/generic/data"]
        empty = file.create_dataset("entry/generic/data", data=h5py.Empty("f"))
        for key, value in attributes.items():
            empty.attrs[key] = value
    with pytest.raises(UnreadableFileError, match="empty.nxs: /entry/generic/data: the NXdata signal has no dataspace"):
        ub.read(path, lazy=lazy)
