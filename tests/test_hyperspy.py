"""HyperSpy: navigation/signal split against RosettaSciIO, hs.load with our module, .hspy files, lazy signals."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import usidbridge as ub
from usidbridge.converters import hyperspy as hyperspy_converter

from conftest import need
from strategies import dimensions


@pytest.fixture(scope="module")
def hs():
    return need("hyperspy.api")


def as_list(signals):
    return signals if isinstance(signals, list) else [signals]


@pytest.mark.parametrize("name", ["AFM_Force_Curve.h5", "SingFreqPFM_0003.h5", "simulated_STEM_Image.h5"])
def test_real_files_split_navigation_and_signal(hs, shared_data, name):
    path = shared_data / "usid" / name
    ours = as_list(hs.load(path, file_format=hyperspy_converter))
    theirs = as_list(hs.load(path, file_format="USID"))
    datasets = ub.read(path)
    assert len(ours) == len(theirs) == len(datasets)
    for signal, peer, dataset in zip(ours, theirs, datasets):
        # RosettaSciIO follows the file's column order (its image of a fastest-first file is transposed) and drops size-1 dims
        peer_names = [axis.name for axis in peer.axes_manager._axes if axis.size > 1]
        our_names = [axis.name for axis in signal.axes_manager._axes if axis.size > 1]
        peer_data = np.asarray(peer.data).squeeze()
        assert np.array_equal(np.asarray(signal.data).squeeze(), peer_data.transpose([peer_names.index(name) for name in our_names]))
        placeholder = dataset.spec.size == 1
        navigation = [axis.name for axis in signal.axes_manager.navigation_axes[::-1]]
        signal_axes = [axis.name for axis in signal.axes_manager.signal_axes[::-1]]
        if placeholder:  # an image: the pixels are the signal, nothing to navigate
            assert navigation == [] and signal_axes == list(dataset.pos.labels)
        else:
            assert navigation == list(dataset.pos.labels) and signal_axes == list(dataset.spec.labels)
        assert peer.axes_manager.navigation_dimension == 0  # RosettaSciIO's own reader puts every dim in the signal
        assert signal.metadata.General.title == dataset.quantity
        assert signal.metadata.Signal.quantity == f"{dataset.quantity} ({dataset.units})"


@given(dims=dimensions(4, max_size=3), split=st.integers(0, 4), data=st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_generated_datasets_round_trip(hs, dims, split, data):
    count = data.draw(st.integers(1, 4))
    dims = dims[:count]
    split = min(split, count)
    array = np.random.default_rng(0).normal(size=[dim.size for dim in dims])
    dataset = ub.Dataset.from_ndarray(array, dims[:split], dims[split:], quantity="Current", units="nA")
    signal = hyperspy_converter.to_hyperspy(dataset)
    if not (len(dataset.spec.dims) == 1 and dataset.spec.dims[0].size == 1):  # else an image: no navigation
        assert [axis.name for axis in signal.axes_manager._axes if axis.navigate] == list(dataset.pos.labels)
    back = hyperspy_converter.from_hyperspy(signal)
    assert back.pos.same_as(dataset.pos) and back.spec.same_as(dataset.spec)
    assert np.array_equal(back.to_ndarray(), dataset.to_ndarray())
    assert (back.quantity, back.units) == ("Current", "nA")


def test_non_uniform_axes_are_non_uniform(hs):
    energy = ub.Dimension("Energy", "eV", [1.0, 2.0, 4.0, 8.0])
    dataset = ub.Dataset.from_ndarray(np.arange(12.0).reshape(3, 4), [ub.Dimension("X", "nm", 3)], [energy], quantity="I", units="")
    signal = hyperspy_converter.to_hyperspy(dataset)
    axis = signal.axes_manager.signal_axes[0]
    assert not axis.is_uniform and axis.axis.tolist() == [1.0, 2.0, 4.0, 8.0]
    assert hyperspy_converter.from_hyperspy(signal).spec.dims[0] == energy


def test_a_file_record_hyperspy_cannot_number_is_kept_as_record_0(hs, tmp_path):
    """Files converted by earlier versions carry General.FileIO {"reader": ...}; HyperSpy's save failed on it."""
    dataset = ub.Dataset.from_ndarray(np.arange(6.0).reshape(2, 3), [ub.Dimension("X", "m", 2)], [ub.Dimension("E", "eV", 3)], quantity="I", units="A", metadata={"hyperspy": {"General": {"FileIO": {"reader": "DigitalMicrograph"}}}})
    records = hs.load(ub.write(dataset, tmp_path / "old.hspy")).metadata.General.FileIO.as_dictionary()
    assert records["0"] == {"reader": "DigitalMicrograph"} and records["1"]["operation"] == "save"


def test_axis_values_come_back_bitwise(hs, tmp_path):
    """-0.0 is uniform with 1.0 and 2.0 to within rounding, but offset + scale * i gives 0.0: the exact values travel too."""
    dims = [ub.Dimension("Y", "m", [-0.0, 1.0, 2.0]), ub.Dimension("X", "m", [0.0, 0.0, -0.0])]
    dataset = ub.Dataset.from_ndarray(np.arange(9.0).reshape(3, 3), dims[:1], dims[1:], quantity="I", units="A")
    (back,) = ub.read(ub.write(dataset, tmp_path / "zeros.hspy"))
    assert [dim.values.tobytes() for dim in back.dims] == [dim.values.tobytes() for dim in dataset.dims]


def test_hspy_files_saved_by_hyperspy_convert_and_back(hs, tmp_path):
    data = np.random.default_rng(2).normal(size=(3, 4, 16)).astype(np.float32)
    signal = hs.signals.Signal1D(data)
    signal.axes_manager[0].name, signal.axes_manager[0].units, signal.axes_manager[0].scale = "x", "nm", 2.0
    signal.axes_manager[1].name, signal.axes_manager[1].units = "y", "nm"
    signal.axes_manager[-1].name, signal.axes_manager[-1].units, signal.axes_manager[-1].offset = "Energy", "keV", 0.5
    signal.metadata.General.title = "EDS map"
    signal.original_metadata.add_dictionary({"detector": {"gain": 1.5}})
    signal.save(tmp_path / "map.hspy")
    h5 = ub.convert(tmp_path / "map.hspy", tmp_path / "map.h5")
    assert ub.validate(h5).ok
    (dataset,) = ub.read(h5)
    assert dataset.pos.labels == ("y", "x") and dataset.spec.labels == ("Energy",) and dataset.quantity == "EDS map"
    assert dataset.metadata["detector"] == {"gain": 1.5}
    back = ub.convert(h5, tmp_path / "again.hspy")
    reloaded = hs.load(back)
    assert np.array_equal(reloaded.data, data) and reloaded.metadata.General.title == "EDS map"
    for mine, theirs in zip(reloaded.axes_manager._axes, signal.axes_manager._axes):
        assert (mine.name, mine.units, mine.navigate, mine.size) == (theirs.name, theirs.units, theirs.navigate, theirs.size)
        assert np.allclose(mine.axis, theirs.axis)
    assert reloaded.original_metadata.detector.gain == 1.5


def test_lazy_in_lazy_out(hs, shared_data):
    (signal,) = as_list(hs.load(shared_data / "usid" / "AFM_Force_Curve.h5", file_format=hyperspy_converter, lazy=True))
    assert signal._lazy
    dataset = hyperspy_converter.from_hyperspy(signal)
    assert hasattr(dataset.data, "compute")
    assert np.array_equal(np.asarray(dataset.data), ub.read(shared_data / "usid" / "AFM_Force_Curve.h5")[0].data)


def test_compound_gives_one_signal_per_field(hs):
    data = np.zeros((2, 3), [("amplitude", "f4"), ("phase", "f4")])
    data["phase"] = 1.0
    dataset = ub.Dataset.from_ndarray(data, [ub.Dimension("Y", "", 2), ub.Dimension("X", "", 3)], quantity="Fit", units="")
    signals = hyperspy_converter.to_hyperspy(dataset)
    assert [signal.metadata.General.title for signal in signals] == ["Fit amplitude", "Fit phase"]
    assert signals[1].data.tolist() == [[1.0] * 3] * 2


def assert_same_tree(ours, theirs, path=""):
    """Equal metadata trees; a list of numbers and the numeric array HDF5 stores it as count as equal."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and ours.keys() == theirs.keys(), path
        for key in theirs:
            assert_same_tree(ours[key], theirs[key], f"{path}/{key}")
    elif isinstance(ours, np.ndarray) or isinstance(theirs, np.ndarray):
        assert np.array_equal(np.asarray(ours), np.asarray(theirs)), path
    else:
        assert ours == theirs and type(ours) is type(theirs), path


USID_FILES = ["AFM_Force_Curve.h5", "SingFreqPFM_0003.h5", "simulated_STEM_Image.h5"]


@pytest.mark.parametrize("name", USID_FILES)
def test_hyperspy_native_signals_rebin_and_fft(hs, shared_data, name):
    """Evenly spaced dims (to within float32 rounding in these files) arrive as uniform axes, so rebin and fft work."""
    for signal in as_list(hs.load(shared_data / "usid" / name, file_format=hyperspy_converter)):
        halves = [axis.size // 2 if axis.size % 2 == 0 else axis.size for axis in signal.axes_manager._axes]
        rebinned = signal.rebin(new_shape=halves)
        assert rebinned.data.shape == tuple(size for size in reversed(halves)) or rebinned.data.size == int(np.prod(halves))
        transformed = signal.fft()
        assert np.iscomplexobj(transformed.data)


def test_uniform_to_rounding_is_uniform_and_round_trips_exactly(hs):
    rounded = ub.Dimension("X", "m", np.arange(64, dtype=np.float32) * np.float32(1.953125e-08) + np.float32(3e-7))
    uneven = ub.Dimension("Energy", "eV", np.array([0.0, 1.0, 2.0, 3.001]))
    dataset = ub.Dataset.from_ndarray(np.zeros((64, 4)), [rounded], [uneven], quantity="I", units="A")
    signal = hyperspy_converter.to_hyperspy(dataset)
    x_axis, energy_axis = signal.axes_manager["X"], signal.axes_manager["Energy"]
    assert x_axis.is_uniform and np.allclose(x_axis.axis, rounded.values, rtol=1e-6)
    assert not energy_axis.is_uniform  # more than rounding away from uniform: kept exact
    back = hyperspy_converter.from_hyperspy(signal)
    assert back.pos.dims[0] == rounded and back.spec.dims[0] == uneven


@pytest.mark.parametrize("name", ["test_loading_image_saved_with_DM.tif", "FEI-Helios-Ebeam-8bits.tif", "test_tiff_Zeiss_SEM_512pix.tif", "JEOL-SightX-TEM-mag-dummy.tif", "optical_Zeiss_AxioVision_RGB.tif", "test_loading_image_saved_with_imageJ_stack.tif"])
def test_hspy_saved_by_hyperspy_from_vendor_tiffs_converts(hs, shared_data, tmp_path, name):
    """HyperSpy's metadata from vendor TIFFs (bytes, nested lists, None) is encoded in h5USID and read back."""
    signal = hs.load(shared_data / "tiff" / name)
    signal.save(tmp_path / "saved.hspy")
    target = ub.convert(tmp_path / "saved.hspy", tmp_path / "saved.h5")
    assert ub.validate(target).ok
    (dataset,) = ub.read(target)
    (direct,) = ub.read(tmp_path / "saved.hspy")
    del dataset.metadata["h5usid"]
    assert_same_tree(dataset.metadata, direct.metadata)
    reference = np.asarray(signal.data)
    ours = np.asarray(dataset.to_ndarray())
    assert ours.size == reference.size and ours.tobytes() == np.ascontiguousarray(reference).tobytes() or ours.dtype.names
    for axis in signal.axes_manager.signal_axes:
        dim = {dim.name: dim for dim in dataset.pos.dims + dataset.spec.dims}[axis.name]
        assert dim.scale == pytest.approx(axis.scale) and dim.offset == pytest.approx(axis.offset)


def test_lazy_reads_do_not_keep_every_file_open(tmp_path):
    """RosettaSciIO keeps each .hspy file it reads lazily open for the life of the process; through
    usidbridge a file closes when its lazy data is freed, so a long-lived process (a batch worker,
    a loop in a notebook) does not gather open files and their memory (150 reads: 149 descriptors
    and 100 MiB before). Lazy data still in use keeps reading."""
    import gc
    import os

    dataset = ub.Dataset.from_ndarray(np.random.default_rng(0).random((4, 4, 8)), [ub.Dimension("Y", "m", 4), ub.Dimension("X", "m", 4)], [ub.Dimension("E", "eV", 8)], quantity="I", units="a.u.")
    paths = [ub.write(dataset, tmp_path / f"signal_{number}.hspy") for number in range(40)]
    kept = ub.read(paths[0], lazy=True)[0]
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    for path in paths[1:]:
        for item in ub.read(path, lazy=True):
            item.to_ndarray()
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= before + 2
    assert np.array_equal(kept.to_ndarray(), dataset.to_ndarray())


@pytest.mark.parametrize("damage", ["link cycle", "external link to itself", "deep nesting"])
def test_structures_that_would_exhaust_hyperspy_recursion_are_refused_first(tmp_path, damage):
    """HyperSpy walks a file's groups by recursion: a link cycle or groups nested hundreds deep ran
    it out of stack, and the RecursionError, raised while h5py held its global lock, left the lock
    held by the reading thread: the next lazy read computed by dask's threads then waited for ever.
    Such files are refused before HyperSpy opens them; the lock is free and lazy reads go on."""
    import concurrent.futures

    import h5py
    from h5py import _objects

    from usidbridge.errors import UnreadableFileError

    dataset = ub.Dataset.from_ndarray(np.arange(32.0).reshape(2, 2, 8), [ub.Dimension("Y", "m", 2), ub.Dimension("X", "m", 2)], [ub.Dimension("E", "eV", 8)])
    good, bad = ub.write(dataset, tmp_path / "good.hspy"), ub.write(dataset, tmp_path / "bad.hspy")
    with h5py.File(bad, "r+") as file:
        if damage == "link cycle":
            file["Experiments/generic/metadata"]["loop"] = h5py.SoftLink("/Experiments")
        elif damage == "external link to itself":
            file["Experiments/generic/metadata"]["loop"] = h5py.ExternalLink("bad.hspy", "/Experiments")
        else:
            file["Experiments/generic/metadata"].create_group("/".join(["level"] * 300))
    expected = {"link cycle": "a link cycle", "external link to itself": "is an external link", "deep nesting": "nested more than 64 groups deep"}[damage]
    with pytest.raises(UnreadableFileError, match=f"bad.hspy: .*{expected}"):
        ub.read(bad, lazy=True)
    assert not _objects.phil._is_owned()
    (lazy,) = ub.read(good, lazy=True)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # dask computes in its threads: a held lock would hang here, not fail
        computed = pool.submit(lazy.to_ndarray)
        assert np.array_equal(computed.result(timeout=60), dataset.to_ndarray())


def test_nesting_depth_counts_every_chain_of_links(tmp_path):
    """`hdf.too_deep` finds the deepest chain even where a group is first reached by a shorter one."""
    import h5py

    from usidbridge.hdf import too_deep

    with h5py.File(tmp_path / "nested.h5", "w") as file:
        deep = file.create_group("/".join(f"g{level}" for level in range(10)))
        deep["shared"] = file.create_group("short/shared")
        file["short/shared"].create_group("/".join(["x"] * 5))
        assert too_deep(file, 16) is None and too_deep(file, 15) == "/g0/g1/g2/g3/g4/g5/g6/g7/g8/g9/shared/x/x/x/x/x"
        assert too_deep(file, 5) is not None and too_deep(file["short"], 64) is None
