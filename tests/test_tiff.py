"""TIFF: the real ImageJ, Zeiss RGB and STEM files; tifffile and HyperSpy as peers; round trips."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import usidbridge as ub
from usidbridge.converters import tiff as tiff_converter
from usidbridge.errors import UnreadableFileError, UnsupportedFeatureError

from conftest import need
from strategies import datasets
from test_cli import assert_one_line_error, run

IMAGEJ = "tiff/test_loading_image_saved_with_imageJ_stack.tif"
ZEISS = "tiff/optical_Zeiss_AxioVision_RGB.tif"


@pytest.fixture(scope="module")
def tifffile():
    return need("tifffile")


def hyperspy_axes(path):
    hs = need("hyperspy.api")
    signal = hs.load(path)
    return {axis.name: (axis.size, axis.scale, axis.units) for axis in signal.axes_manager._axes}


def test_imagej_stack_has_hyperspys_calibration(shared_data):
    (dataset,) = ub.read(shared_data / IMAGEJ)
    y, x = dataset.pos.dims
    (z,) = dataset.spec.dims
    peer = hyperspy_axes(shared_data / IMAGEJ)
    assert y.size == peer["height"][0] and x.size == peer["width"][0] and z.size == peer["depth"][0]
    assert y.scale == pytest.approx(peer["height"][1]) and x.scale == pytest.approx(peer["width"][1])
    assert y.units == x.units == peer["width"][2] == "µm"
    assert z.scale == pytest.approx(peer["depth"][1]) and z.units == "µm"  # HyperSpy leaves the depth unit undefined


def test_imagej_stack_numbers_and_lazy_memory_map(shared_data, tifffile):
    expected = tifffile.imread(shared_data / IMAGEJ)
    (dataset,) = ub.read(shared_data / IMAGEJ, lazy=True)
    assert isinstance(dataset.data.view, np.memmap)  # rows transposed out of the memory map when read, nothing read yet
    assert np.array_equal(dataset.to_ndarray(), expected.transpose(1, 2, 0))
    (as_images,) = ub.read(shared_data / IMAGEJ, frames="position")
    assert [dim.name for dim in as_images.pos.dims] == ["Z", "Y", "X"]
    assert np.array_equal(as_images.to_ndarray(squeeze=True), expected)


def test_zeiss_rgb_is_compound_and_round_trips_identical(shared_data, tifffile, tmp_path):
    (dataset,) = ub.read(shared_data / ZEISS)
    assert dataset.dtype.names == ("red", "green", "blue") and dataset.nd_shape == (10, 13, 1)
    original = tifffile.imread(shared_data / ZEISS)
    out = ub.write(dataset, tmp_path / "rgb.tif")
    assert np.array_equal(tifffile.imread(out), original)
    with tifffile.TiffFile(out) as tif:
        assert int(tif.pages[0].photometric) == 2
    (back,) = ub.read(out)
    assert back.to_ndarray().tobytes() == dataset.to_ndarray().tobytes()
    assert ub.validate(ub.write(dataset, tmp_path / "rgb.h5")).ok


def test_stem_tiff_matches_the_stem_h5(shared_data, tmp_path):
    out = ub.convert(shared_data / "usid" / "simulated_STEM_Image.tif", tmp_path / "stem.h5")
    assert ub.validate(out).ok
    ours = ub.read(out)[0].to_ndarray(squeeze=True)
    theirs = ub.read(shared_data / "usid" / "simulated_STEM_Image.h5")[0].to_ndarray(squeeze=True)
    assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


def test_written_imagej_file_is_calibrated_for_other_readers(tmp_path, tifffile):
    dims = [ub.Dimension.uniform("Y", "µm", 6, scale=0.25), ub.Dimension.uniform("X", "µm", 5, scale=0.25)]
    spec = [ub.Dimension.uniform("Z", "µm", 3, scale=1.5)]
    data = np.random.default_rng(0).normal(size=(6, 5, 3)).astype(np.float32)
    out = ub.write(ub.Dataset.from_ndarray(data, dims, spec, quantity="Intensity", units="counts"), tmp_path / "cal.tif")
    with tifffile.TiffFile(out) as tif:
        assert tif.is_imagej and tif.imagej_metadata["unit"] == "micron" and tif.imagej_metadata["spacing"] == 1.5
        assert np.array_equal(tif.asarray(), data.transpose(2, 0, 1))
    peer = hyperspy_axes(out)
    assert peer["width"][1] == pytest.approx(0.25) and peer["width"][2] == "µm" and peer["depth"][1] == pytest.approx(1.5)


def test_complex_is_refused_and_nothing_is_written(tmp_path):
    dataset = ub.Dataset.from_ndarray(np.ones((2, 3), np.complex64), [ub.Dimension("Y", "", 2), ub.Dimension("X", "", 3)])
    with pytest.raises(UnsupportedFeatureError, match="complex"):
        ub.write(dataset, tmp_path / "c.tif")
    assert list(tmp_path.iterdir()) == []


def test_bigtiff_when_large(tmp_path, tifffile, monkeypatch):
    monkeypatch.setattr(tiff_converter, "BIGTIFF_BYTES", 0)
    dataset = ub.Dataset.from_ndarray(np.ones((4, 4), np.float64), [ub.Dimension("Y", "", 4), ub.Dimension("X", "", 4)])
    with tifffile.TiffFile(ub.write(dataset, tmp_path / "big.tif")) as tif:
        assert tif.is_bigtiff


def tiff_able(dataset):
    return dataset.dtype.kind != "c" and not dataset.dtype.fields


@given(dataset=datasets(allow_non_grid=False).filter(tiff_able))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
def test_round_trip_is_exact(tmp_path, dataset):
    out = ub.write(dataset, tmp_path / "rt.tif", overwrite=True)
    (back,) = ub.read(out)
    assert back.to_ndarray().tobytes() == np.ascontiguousarray(dataset.to_ndarray()).tobytes()
    assert back.dtype == dataset.dtype and back.quantity == dataset.quantity and back.units == dataset.units
    assert back.pos.dims == dataset.pos.dims and back.spec.dims == dataset.spec.dims
    assert back.metadata == dataset.metadata


def test_bad_tiffs(tmp_path, shared_data):
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes((shared_data / IMAGEJ).read_bytes()[:3000])
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    for path in (truncated, garbage):
        with pytest.raises(UnreadableFileError):
            ub.read(path)
        assert_one_line_error(run("convert", path, tmp_path / f"{path.stem}.h5"), str(path))
        assert not (tmp_path / f"{path.stem}.h5").exists()


def test_imagej_hyperstack_axes(tmp_path, tifffile):
    data = np.arange(2 * 3 * 2 * 5 * 6, dtype=np.uint16).reshape(2, 3, 2, 5, 6)
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, data, imagej=True, resolution=(10.0, 10.0), metadata={"axes": "TZCYX", "unit": "um", "spacing": 0.5, "finterval": 2.0})
    (dataset,) = ub.read(path)
    assert [dim.name for dim in dataset.spec.dims] == ["Time", "Z", "Channel"]
    time_dim, z_dim, _ = dataset.spec.dims
    assert time_dim.scale == 2.0 and time_dim.units == "s" and z_dim.scale == 0.5 and z_dim.units == "µm"
    assert dataset.pos.dims[0].scale == pytest.approx(0.1) and dataset.pos.dims[0].units == "µm"
    assert np.array_equal(dataset.to_ndarray(), data.transpose(3, 4, 0, 1, 2))
    (back,) = ub.read(ub.write(dataset, tmp_path / "again.tif"))
    assert back.dims == dataset.dims and np.array_equal(back.to_ndarray(), dataset.to_ndarray())


def test_centimetre_resolution_is_a_calibration_and_inch_is_not(tmp_path, tifffile):
    image = np.zeros((4, 5), np.uint8)
    tifffile.imwrite(tmp_path / "cm.tif", image, resolution=(1000.0, 2000.0), resolutionunit="CENTIMETER")
    tifffile.imwrite(tmp_path / "dpi.tif", image, resolution=(300.0, 300.0), resolutionunit="INCH")
    y, x = ub.read(tmp_path / "cm.tif")[0].pos.dims
    assert (y.scale, x.scale, x.units) == (pytest.approx(5.0), pytest.approx(10.0), "µm")
    y, x = ub.read(tmp_path / "dpi.tif")[0].pos.dims
    assert (y.scale, x.scale, x.units) == (1.0, 1.0, "")


@pytest.mark.parametrize("layout", [{}, {"byteorder": ">"}, {"compression": "zlib"}, {"tile": (16, 16)}, {"predictor": True, "compression": "zlib"}])
def test_eager_read_equals_tifffile_however_the_data_is_stored(tmp_path, tifffile, layout):
    """Contiguous data in this machine's byte order is read in parts at once; big-endian, compressed
    and tiled data by tifffile. Either way the numbers are tifffile's."""
    stack = np.random.default_rng(3).integers(0, 60000, (6, 32, 48)).astype(np.uint16)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, **layout)
    (dataset,) = ub.read(path)
    assert dataset.spec.labels == ("Frame",) and np.array_equal(np.moveaxis(dataset.to_ndarray(), -1, 0), tifffile.imread(path))
