"""Plain HDF5: any dataset of any HDF5 file, dims from dimension scales, `--dataset` by path, name, quantity or glob, `info`."""

import h5py
import numpy as np

import usidbridge as ub
from usidbridge import registry

from conftest import need
from test_cli import assert_one_line_error, run


def scaled_file(path):
    """A 3-D EELS-like map with dimension scales on every axis, a 2-D image without scales, a string and a scale."""
    with h5py.File(path, "w") as file:
        group = file.create_group("instrument/detector")
        data = group.create_dataset("spectrum_image", data=np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5))
        data.attrs["long_name"] = "Electron counts"
        data.attrs["units"] = "counts"
        data.attrs["exposure"] = 0.5
        for axis, (name, units, values) in enumerate([("y", "nm", [0.0, 2.5]), ("x", "nm", [0.0, 2.5, 5.0]), ("energy", "eV", [100, 101, 103, 106, 110])]):
            scale = group.create_dataset(name, data=np.asarray(values, dtype=np.float64))
            scale.make_scale(name)
            scale.attrs["units"] = units
            data.dims[axis].attach_scale(scale)
        file.create_dataset("camera/frame", data=np.ones((4, 6), dtype=np.uint16))
        file.create_dataset("camera/trace", data=np.linspace(0, 1, 7))
        file.create_dataset("notes", data="written by hand")
    return path


def test_dimension_scales_give_names_units_and_values(tmp_path):
    path = scaled_file(tmp_path / "plain.h5")
    assert registry.detect(path).name == "hdf5"
    (dataset,) = ub.read(path, dataset="/instrument/detector/spectrum_image")
    assert [dim.name for dim in dataset.pos.dims] == ["y", "x"] and dataset.spec.dims[0].name == "energy"
    assert dataset.spec.dims[0].values.tolist() == [100, 101, 103, 106, 110] and not dataset.spec.dims[0].is_uniform
    assert dataset.pos.dims[1].units == "nm" and (dataset.quantity, dataset.units) == ("Electron counts", "counts")
    assert dataset.metadata["hdf5"]["attributes"]["exposure"] == 0.5
    assert np.array_equal(dataset.to_ndarray(), np.arange(30, dtype=np.float32).reshape(2, 3, 5))


def test_without_scales_the_documented_rule_and_override(tmp_path):
    path = scaled_file(tmp_path / "plain.h5")
    (image,) = ub.read(path, dataset="frame")
    assert [dim.name for dim in image.pos.dims] == ["arb_0", "arb_1"] and image.spec.size == 1
    (trace,) = ub.read(path, dataset="camera/trace")
    assert trace.pos.size == 1 and trace.spec.dims[0].size == 7
    (as_spectra,) = ub.read(path, dataset="frame", spectroscopic=1)
    assert as_spectra.pos.dims[0].size == 4 and as_spectra.spec.dims[0].size == 6
    (by_name,) = ub.read(path, dataset="frame", spectroscopic=["arb_0"])
    assert by_name.spec.dims[0].size == 4


def test_dataset_selection_by_glob_and_quantity_and_the_candidates(tmp_path):
    path = scaled_file(tmp_path / "plain.h5")
    assert len(ub.read(path)) == 3  # the string and the scales are not data
    assert [dataset.name for dataset in ub.read(path, dataset="/camera/*")] == ["frame", "trace"]
    assert ub.read(path, dataset="Electron counts")[0].name == "spectrum_image"
    (eager,) = ub.read(path, dataset="frame")
    assert isinstance(eager.data, np.ndarray)
    result = run("convert", path, tmp_path / "out.h5", "--dataset", "nothing*")
    assert_one_line_error(result, "no dataset matches 'nothing*'", "/camera/frame", "/instrument/detector/spectrum_image")


def test_converts_to_compliant_h5usid_and_pyusid_opens_it(tmp_path, usid):
    path = scaled_file(tmp_path / "plain.h5")
    result = run("convert", path, tmp_path / "out.h5", "--dataset", "/instrument/detector/spectrum_image")
    assert result.returncode == 0, result.stderr
    assert ub.validate(tmp_path / "out.h5").ok
    with h5py.File(tmp_path / "out.h5", "r") as file:
        (main,) = usid.hdf_utils.get_all_main(file)
        assert usid.USIDataset(main).get_n_dim_form().shape == (2, 3, 5)


def test_info_shows_the_tree_marks_convertible_and_cuts_long_trees(tmp_path):
    path = scaled_file(tmp_path / "plain.h5")
    result = run("info", path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "/camera/frame " in line]
    assert lines and "convertible" in lines[0]
    assert "/notes" in result.stdout and not [line for line in result.stdout.splitlines() if "/notes" in line and "convertible" in line]
    many = tmp_path / "many.h5"
    with h5py.File(many, "w") as file:
        for number in range(250):
            file.create_dataset(f"run_{number:03d}", data=np.zeros(3))
    listing = run("info", many)
    assert listing.returncode == 0 and "… 50 more" in listing.stdout


def test_plain_hdf5_with_netcdf_peer_written_dimension_scales(tmp_path):
    """netCDF-4 files are HDF5 with dimension scales; read as plain HDF5 they keep their coordinates."""
    xarray = need("xarray")
    array = xarray.DataArray(np.zeros((2, 3)), dims=("y", "x"), coords={"y": [1.0, 2.0], "x": [0.5, 1.0, 1.5]}, name="signal")
    array.x.attrs["units"] = "mm"
    array.to_netcdf(tmp_path / "xr.nc", engine="h5netcdf")
    datasets = ub.read(tmp_path / "xr.nc", "hdf5")
    (signal,) = [dataset for dataset in datasets if dataset.name == "signal"]
    assert [dim.name for dim in signal.pos.dims] == ["y", "x"] and signal.pos.dims[1].units == "mm"


def test_velox_emd_read_as_plain_hdf5_converts_to_compliant_h5usid(shared_data, tmp_path, usid):
    """A Velox EMD holds datasets named Data and Metadata under each signal's group: a Main dataset
    named Metadata crashed the h5USID writer ("name already exists") beside USID's Metadata group."""
    source = shared_data / "rosettasciio" / "emd" / "velox_tem_stack.emd"
    datasets = ub.read(source, "hdf5")
    assert "Metadata" in [dataset.name for dataset in datasets]
    out = ub.write(datasets, tmp_path / "velox.h5")
    report = ub.validate(out)
    assert report.ok, report.findings
    back = ub.read(out)
    assert [dataset.name for dataset in back] == [dataset.name for dataset in datasets]
    with h5py.File(source, "r") as file, h5py.File(out, "r") as written:
        for dataset, mine in zip(datasets, back):
            assert np.array_equal(mine.to_ndarray().ravel(), file[dataset.source.split("::")[1]][()].ravel())
        assert len(usid.hdf_utils.get_all_main(written)) == len(datasets)
