"""Instrument files none of us wrote (DM, EMD, TIA, MSA, Bruker, Renishaw, vendor TIFFs), against `hs.load`.

`hs.load` (RosettaSciIO) is the reference: the same numbers, and for every axis the same size,
scale, offset and units (compared with pint), with navigation ↔ position and signal ↔
spectroscopic. An image with no navigation (a Signal2D) is USID's image: pixels are positions.
"""

import warnings

import numpy as np
import pytest

import usidbridge as ub
from usidbridge import registry
from usidbridge.model import placeholder_dimension
from usidbridge.signals import is_image

from conftest import need, same_metadata
from test_cli import assert_one_line_error, run

ROSETTASCIIO = [
    "rosettasciio/dm/EELS_spectrum.dm3",
    "rosettasciio/dm/EELS_spectrum_image.dm3",
    "rosettasciio/dm/STEM_image.dm3",
    "rosettasciio/dm/spectrum_image_3D.dm4",
    "rosettasciio/emd/ncem_example_signal.emd",
    "rosettasciio/emd/velox_tem_stack.emd",
    "rosettasciio/msa/example1.msa",
    "rosettasciio/tia/16x16-spectrum_image-5x5x1024.emi",
    "rosettasciio/tia/16x16-spectrum_image-5x5x1024_1.ser",
    "rosettasciio/bruker/bruker_nano.spx",
    "rosettasciio/renishaw/renishaw_test_map.wdf",
]
VENDOR_TIFFS = [
    "tiff/test_loading_image_saved_with_DM.tif",
    "tiff/FEI-Helios-Ebeam-8bits.tif",
    "tiff/test_tiff_Zeiss_SEM_512pix.tif",
    "tiff/JEOL-SightX-TEM-mag-dummy.tif",
    "tiff/optical_Zeiss_AxioVision_RGB.tif",
]
RGB = {"R": "red", "G": "green", "B": "blue", "A": "alpha"}


@pytest.fixture(scope="module")
def hs():
    return need("hyperspy.api")


@pytest.fixture(scope="module")
def units():
    pint = need("pint")
    registry_ = pint.UnitRegistry()

    def same(ours: str, theirs) -> bool:
        theirs = "" if theirs is None or str(theirs) == "<undefined>" else str(theirs)
        if ours == theirs:
            return True
        try:
            return registry_.Quantity(1, ours or "dimensionless") == registry_.Quantity(1, theirs or "dimensionless")
        except (pint.errors.PintError, ValueError, TypeError, AttributeError, AssertionError):
            return False

    return same


def load_reference(hs, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signals = hs.load(path)
    return signals if isinstance(signals, list) else [signals]


def hyperspy_quantity(signal) -> tuple[str, str]:
    """Quantity and units as HyperSpy's metadata give them, computed here: ``Signal.quantity`` "X (U)", else the title."""
    quantity = signal.metadata.get_item("Signal.quantity", "")
    if quantity.endswith(")") and " (" in quantity:
        name, units = quantity[:-1].rsplit(" (", 1)
        return name, units
    return quantity or signal.metadata.General.title or "Intensity", ""


def assert_matches_hyperspy(dataset, signal, same_units, quantity=True):
    """Numbers, every axis (size, scale, offset, units), the navigation / signal split, quantity and
    units (for our own TIFF reader, which names what HyperSpy leaves blank, not the quantity)."""
    if quantity:
        assert (dataset.quantity, dataset.units) == hyperspy_quantity(signal)
    axes = signal.axes_manager._axes
    reference = np.asarray(signal.data)
    if reference.dtype.names:
        reference = reference.view(np.dtype({"names": [RGB[name] for name in reference.dtype.names], "formats": [reference.dtype.fields[name][0] for name in reference.dtype.names]}))
    if is_image(dataset) and dataset.spec.dims[0] == placeholder_dimension():  # USID's image: no spectroscopic dim of its own
        dims = list(dataset.pos.dims)
        assert signal.axes_manager.navigation_dimension == 0 and signal.axes_manager.signal_dimension == len(dims)
        ours = np.asarray(dataset.to_ndarray()).reshape(dataset.pos.shape)
    else:
        dims = list(dataset.pos.dims if dataset.pos.size > 1 or dataset.pos.dims[0].name != "arb" else []) + list(dataset.spec.dims)
        assert [axis.navigate for axis in axes] == [index < len(dims) - len(dataset.spec.dims) for index in range(len(dims))]
        ours = np.asarray(dataset.to_ndarray()).reshape(reference.shape)
    assert len(dims) == len(axes)
    assert ours.dtype == reference.dtype and np.array_equal(ours, reference)
    for dim, axis in zip(dims, axes):
        assert dim.size == axis.size
        np.testing.assert_allclose(dim.values, axis.axis, rtol=1e-12, atol=0)
        if axis.is_uniform and axis.size > 1:  # one value has no step: USID keeps the value alone
            assert dim.is_uniform and dim.offset == pytest.approx(axis.offset) and dim.scale == pytest.approx(axis.scale)
        assert same_units(dim.units, axis.units), (dim, axis.units)


@pytest.mark.parametrize("name", ROSETTASCIIO + VENDOR_TIFFS)
def test_reads_like_hyperspy(hs, units, shared_data, name):
    path = shared_data / name
    datasets = ub.read(path)
    signals = load_reference(hs, path)
    assert len(datasets) == len(signals)
    for dataset, signal in zip(datasets, signals):
        assert_matches_hyperspy(dataset, signal, units, quantity=name in ROSETTASCIIO)


@pytest.mark.parametrize("name", ROSETTASCIIO + VENDOR_TIFFS)
def test_converts_to_h5usid_that_validates_and_pyusid_opens(usid, shared_data, tmp_path, name):
    target = ub.convert(shared_data / name, tmp_path / "out.h5")
    report = ub.validate(target)
    assert report.ok, report.findings
    import h5py

    with h5py.File(target, "r") as file:
        mains = usid.hdf_utils.get_all_main(file)
        assert len(mains) == len(ub.read(shared_data / name))
        for main in mains:
            assert usid.hdf_utils.check_if_main(main)
            assert usid.USIDataset(main).get_n_dim_form().size == main.size


@pytest.mark.parametrize("name", ROSETTASCIIO)
def test_converts_to_hspy_that_hyperspy_loads(hs, shared_data, tmp_path, name):
    """Every instrument file to .hspy: HyperSpy loads it with the data of its own reading and the
    original metadata. The reader's record in General.FileIO had a key HyperSpy's save cannot
    number ('reader'), and every such write raised a ValueError inside HyperSpy."""
    source = ub.read(shared_data / name)
    target = ub.write(source[0], tmp_path / "out.hspy")  # .hspy holds one signal: the first
    loaded, reference = hs.load(target), load_reference(hs, shared_data / name)[0]
    assert np.array_equal(np.asarray(loaded.data).squeeze(), np.asarray(reference.data).squeeze())  # USID's size-1 placeholders stay
    records = list(loaded.metadata.General.FileIO.as_dictionary().values())
    assert [record["operation"] for record in records] == ["load", "save", "load"] and records[0]["io_plugin"].startswith("rsciio.")
    assert same_metadata(ub.read(target)[0].metadata | {"hyperspy": {}}, source[0].metadata | {"hyperspy": {}})


def test_rosettasciio_reader_is_lazy_where_it_can_be(shared_data):
    (dataset,) = ub.read(shared_data / "rosettasciio/dm/spectrum_image_3D.dm4", lazy=True)
    assert hasattr(dataset.data, "compute")
    (eager,) = ub.read(shared_data / "rosettasciio/dm/spectrum_image_3D.dm4")
    assert np.array_equal(np.asarray(dataset.data), eager.data)
    (renishaw, _image) = ub.read(shared_data / "rosettasciio/renishaw/renishaw_test_map.wdf", lazy=True)  # no lazy mode: read
    assert not renishaw.spec.dims[0].is_uniform  # the Raman shift axis stays non-uniform


def test_original_metadata_is_kept(shared_data, tmp_path):
    (dataset,) = ub.read(shared_data / "rosettasciio/bruker/bruker_nano.spx")
    assert "Hardware" in dataset.metadata and dataset.metadata["hyperspy"]["General"]["title"] == "EDX"
    (back,) = ub.read(ub.write(dataset, tmp_path / "spx.h5"))
    assert back.metadata["Hardware"] == dataset.metadata["Hardware"]


def test_extensions_follow_rosettasciio_format_table():
    from rsciio import IO_PLUGINS

    from usidbridge.converters import rosettasciio

    expected = {
        f".{extension.lower()}"
        for plugin in IO_PLUGINS
        if plugin["name"] not in rosettasciio.NATIVE
        for extension in plugin["file_extensions"]
        if f".{extension.lower()}" not in rosettasciio.AUTO_EXCLUDED
    }
    assert set(rosettasciio.FORMAT.extensions) == expected


def test_two_readers_claiming_a_file_is_one_clear_error(tmp_path, shared_data):
    unknown = tmp_path / "camera.img"
    unknown.write_bytes(b"\x01\x02\x03\x04" + bytes(300))
    result = run("convert", unknown, tmp_path / "out.h5")
    assert_one_line_error(result, str(unknown), "JEOL", "Hamamatsu", "-r reader=")
    chosen = run("convert", shared_data / "rosettasciio/msa/example1.msa", tmp_path / "msa.h5", "--from", "rosettasciio", "-r", "reader=msa")
    assert chosen.returncode == 0, chosen.stderr
    assert_one_line_error(run("convert", shared_data / "rosettasciio/msa/example1.msa", tmp_path / "x.h5", "--from", "rosettasciio", "-r", "reader=nonesuch"), "nonesuch", "DigitalMicrograph")


def test_detected_by_content_not_only_extension(shared_data, tmp_path):
    renamed = tmp_path / "spectrum.txt"
    renamed.write_bytes((shared_data / "rosettasciio/msa/example1.msa").read_bytes())
    assert registry.detect(renamed).name == "rosettasciio"
    (dataset,) = ub.read(renamed, "rosettasciio", reader="MSA")
    assert dataset.spec.dims[0].name == "Energy"


def test_imagej_stack_as_images_has_hyperspys_split(hs, units, shared_data):
    """A stack read with frames=position is a sequence of images: HyperSpy navigates the frames, as hs.load does."""
    from usidbridge.signals import signal_dict

    path = shared_data / "tiff/test_loading_image_saved_with_imageJ_stack.tif"
    (dataset,) = ub.read(path, frames="position")
    (signal,) = load_reference(hs, path)
    ours = signal_dict(dataset)
    assert [axis["navigate"] for axis in ours["axes"]] == [axis.navigate for axis in signal.axes_manager._axes]
    assert np.array_equal(ours["data"], signal.data)
    for dim, axis in zip(dataset.pos.dims, signal.axes_manager._axes):
        assert dim.size == axis.size and dim.scale == pytest.approx(axis.scale) and (axis.name == "depth" or units(dim.units, axis.units))


def test_missing_codec_is_named_not_called_damage(tmp_path, shared_data):
    """A JPEG-compressed TIFF reads with imagecodecs; without it, the error names the package to install."""
    import subprocess
    import sys

    tifffile = need("tifffile")
    need("imagecodecs")
    image = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
    for compression in ("jpeg", "lzw", "zlib", "zstd"):
        path = tmp_path / f"{compression}.tif"
        tifffile.imwrite(path, image, compression=compression)
        (dataset,) = ub.read(path)
        assert dataset.to_ndarray(squeeze=True).shape == (64, 64)
        if compression != "jpeg":
            assert np.array_equal(dataset.to_ndarray(squeeze=True), image)
    blocked = "import sys; sys.modules['imagecodecs'] = None\nfrom usidbridge.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", blocked, "convert", str(tmp_path / "lzw.tif"), str(tmp_path / "out.h5")], capture_output=True, text=True)
    assert_one_line_error(result, "imagecodecs", "pip install 'usidbridge[tiff]'")
    assert "damaged" not in result.stderr


def without_file_io(metadata: dict) -> dict:
    """The metadata without General.FileIO, numpy scalars as Python's (the model keeps scalars as Python
    numbers, so an int32 of Renishaw's is an int64 in our .hspy: the same value)."""
    def plain(value):
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value.item() if isinstance(value, np.generic) else value

    general = {key: value for key, value in metadata.get("General", {}).items() if key != "FileIO"}
    return plain({**metadata, "General": general})


@pytest.mark.parametrize("via", [None, ".h5"])
@pytest.mark.parametrize("name", ROSETTASCIIO)
def test_hspy_metadata_is_what_hyperspy_saves(hs, shared_data, tmp_path, name, via):
    """usidbridge's .hspy of an instrument file, directly or through h5USID, has the metadata of
    ``hs.load(...).save(...)``, apart from the file-IO record: HyperSpy's reading of the file (its
    post-processing and mapping: quantity, beam energy, angles, dates) arrives and reads back into
    the same tree, and nothing of ours is added."""
    first = ub.read(shared_data / name)[0]
    if via:
        (first,) = ub.read(ub.write(first, tmp_path / f"via{via}"))
    ours = hs.load(ub.write(first, tmp_path / "ours.hspy"))
    reference = load_reference(hs, shared_data / name)[0]
    reference.save(tmp_path / "theirs.hspy")
    theirs = hs.load(tmp_path / "theirs.hspy")
    assert same_metadata(without_file_io(ours.metadata.as_dictionary()), without_file_io(theirs.metadata.as_dictionary()))


def test_dm_spectrum_image_navigates_the_scan(hs, shared_data, tmp_path):
    """A Gatan EELS spectrum image: the scan (6 × 49) is the positions and energy loss the spectrum,
    as hs.load gives (6, 49|1024); before, energy loss was a position and x the spectrum."""
    (dataset,) = ub.read(shared_data / "rosettasciio/dm/EELS_spectrum_image.dm3")
    assert [(dim.name, dim.size) for dim in dataset.pos.dims] == [("y", 49), ("x", 6)]
    assert [(dim.name, dim.units, dim.size, dim.offset, dim.scale) for dim in dataset.spec.dims] == [("Energy loss", "eV", 1024, 350.0, 0.5)]
    assert (dataset.quantity, dataset.units) == ("Intensity", "Counts")
    (back,) = ub.read(ub.convert(shared_data / "rosettasciio/dm/EELS_spectrum_image.dm3", tmp_path / "si.hspy"))
    tem = back.metadata["hyperspy"]["Acquisition_instrument"]["TEM"]
    assert (tem["beam_energy"], tem["convergence_angle"], tem["Detector"]["EELS"]["collection_angle"], tem["Detector"]["EELS"]["dwell_time"]) == (200.0, 30.0, 33.0, 0.2)
    assert back.metadata["hyperspy"]["General"]["date"] == "2019-12-14" and (back.quantity, back.units) == ("Intensity", "Counts")


POST_PROCESS_STEPS = {
    "to_signal1D": [lambda signal: signal.to_signal1D()],
    "to_signal1D_optimized_then_squeeze": [lambda signal: signal.to_signal1D(optimize=True), lambda signal: signal.squeeze()],
    "as_signal2D": [lambda signal: signal.as_signal2D((0, 2))],
    "as_signal1D_first_axis": [lambda signal: signal.as_signal1D(0)],
    "transpose_signal_axes": [lambda signal: signal.transpose(signal_axes=[1, 3])],
    "squeeze": [lambda signal: signal.squeeze()],
    "none": [],
}


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("steps", POST_PROCESS_STEPS)
def test_post_processing_steps_are_done_as_hyperspy_does_them(hs, units, shared_data, monkeypatch, steps, lazy):
    """Whatever post-processing a RosettaSciIO reader asks for is done as hs.load does it: a reader
    that returns a 4-D signal (two axes navigating, one of size 1) and these steps (patched in for the MSA reader, which
    both read through) gives the same numbers, axes and navigation / signal split."""
    import rsciio.msa

    rng = np.random.default_rng(3)

    def reader(filename, lazy=False, **kwds):
        data = rng.integers(0, 100, size=(3, 1, 4, 5)).astype(np.float32)
        axes = [{"name": name, "units": unit, "size": size, "offset": 0.5 * index, "scale": 1.0 + index, "navigate": navigate}
                for index, (name, unit, size, navigate) in enumerate([("t", "s", 3, True), ("z", "nm", 1, True), ("y", "nm", 4, False), ("E", "eV", 5, False)])]
        metadata = {"General": {"title": "patched"}, "Signal": {"quantity": "Counts (e)"}}
        if lazy:
            import dask.array

            data = dask.array.from_array(data, chunks=2)
        return [{"data": data, "axes": axes, "metadata": metadata, "original_metadata": {"steps": steps}, "post_process": POST_PROCESS_STEPS[steps]}]

    monkeypatch.setattr(rsciio.msa, "file_reader", reader)
    path = shared_data / "rosettasciio/msa/example1.msa"
    (dataset,) = ub.read(path, lazy=lazy)
    rng = np.random.default_rng(3)
    (signal,) = load_reference(hs, path)
    assert_matches_hyperspy(dataset, signal, units)
    assert dataset.is_lazy == lazy


@pytest.mark.parametrize("name", [name for name in ROSETTASCIIO if name.endswith((".dm3", ".dm4"))])
def test_files_whose_reader_asks_for_post_processing(shared_data, name):
    """The shared files whose reader returns post-processing steps (Gatan DM: to_signal1D, squeeze),
    so that test_reads_like_hyperspy covers them."""
    from rsciio.digitalmicrograph import file_reader

    assert all(signal["post_process"] for signal in file_reader(str(shared_data / name)))


@pytest.mark.parametrize("via", [".nxs", ".nc"])
def test_hyperspy_metadata_through_nexus_and_netcdf(hs, shared_data, tmp_path, via):
    path = shared_data / "rosettasciio/dm/EELS_spectrum_image.dm3"
    (through,) = ub.read(ub.write(ub.read(path)[0], tmp_path / f"via{via}"))
    ours = hs.load(ub.write(through, tmp_path / "ours.hspy"))
    load_reference(hs, path)[0].save(tmp_path / "theirs.hspy")
    assert same_metadata(without_file_io(ours.metadata.as_dictionary()), without_file_io(hs.load(tmp_path / "theirs.hspy").metadata.as_dictionary()))


@pytest.mark.parametrize("lazy", [False, True])
def test_container_sizes_are_checked_before_rosettasciio_trusts_them(hs, shared_data, tmp_path, lazy):
    """A Renishaw file with a zeroed tail made RosettaSciIO loop for ever; a truncated MRC file failed
    only when its memory map was read, long after ub.read (issue 22). Both are one clean error now."""
    from conftest import assert_read_fails_cleanly
    from instrument_files import mrc

    raw = (shared_data / "rosettasciio/renishaw/renishaw_test_map.wdf").read_bytes()
    assert_read_fails_cleanly(tmp_path / "zeroed.wdf", raw[: len(raw) // 2] + bytes(len(raw) - len(raw) // 2))
    assert_read_fails_cleanly(tmp_path / "cut.wdf", raw[:-100])
    stack = np.arange(4 * 12 * 16, dtype=np.float32).reshape(4, 12, 16)
    good = tmp_path / "stack.mrc"
    good.write_bytes(mrc(stack))
    (signal,) = ub.read(good, lazy=lazy)
    assert np.array_equal(hs.load(good).data, stack) and signal.to_ndarray().size == stack.size
    assert_read_fails_cleanly(tmp_path / "cut.mrc", mrc(stack)[:1500])


def sfs_offsets(container: bytes):
    """Where a built SFS container's file tree starts, and a function giving where the data of chunk k
    starts (0x118 + k x chunk size + 0x20, after the chunk's header)."""
    import struct

    chunk = struct.unpack_from("<I", container, 0x128)[0]

    def data(number: int) -> int:
        return 0x118 + number * chunk + 0x20

    return data(struct.unpack_from("<I", container, 0x140)[0]), data


@pytest.fixture(scope="module")
def bruker_map():
    """An EDS hypermap of 3 x 4 pixels and 64 channels, with a strong zero peak, and its electron image."""
    rng = np.random.default_rng(7)
    counts = rng.poisson(0.8, (3, 4, 64))
    counts[:, :, 0] += 60
    return counts, rng.integers(0, 4000, (3, 4))


@pytest.mark.parametrize("lazy", [False, True])
def test_bruker_bcf_reads_like_hyperspy_in_a_child(hs, units, tmp_path, bruker_map, lazy):
    """A .bcf (built here from the SFS and hypermap layouts) reads as hs.load reads it, the counts the
    ones written; its hypermap is decoded by compiled code that trusts the pixel stream, so ub.read
    decodes it in a child process unless isolate=False; in memory either way, lazy or not."""
    from instrument_files import bcf

    counts, image = bruker_map
    path = tmp_path / "map.bcf"
    path.write_bytes(bcf(counts, image))
    assert registry.get("rosettasciio").decodes_natively(path, {})
    signals = load_reference(hs, path)
    for isolate in (True, False):
        datasets = ub.read(path, lazy=lazy, isolate=isolate)
        assert len(datasets) == len(signals) == 2
        for dataset, signal in zip(datasets, signals):
            assert_matches_hyperspy(dataset, signal, units)
        assert np.array_equal(np.asarray(datasets[1].to_ndarray()), counts) and np.array_equal(np.asarray(datasets[0].to_ndarray()).reshape(3, 4), image)
        assert datasets[1].pos.dims[1].scale == pytest.approx(0.5) and datasets[1].spec.dims[0].scale == pytest.approx(0.01)
        assert isinstance(datasets[1].data, np.ndarray)  # its lazy mode is one dask block of the whole map: read now


def test_bruker_container_is_checked_before_its_reader_trusts_it(tmp_path, bruker_map):
    """RosettaSciIO's SFS reader trusts every number of the container: a cycle in the file tree's
    parents loops it for ever while its memory grows, a chunk size of 0 divides by zero, a pointer past
    the end decodes garbage. Each is one clean error naming the file, found before the reader runs,
    with or without the child process; so is a file time no date can hold, which the reader raises on."""
    import struct

    from conftest import assert_read_fails_cleanly
    from instrument_files import bcf

    good = bcf(*bruker_map)
    tree, chunk_data = sfs_offsets(good)
    cycle = bytearray(good)
    struct.pack_into("<i", cycle, tree + 40, 1)  # the folder's parent: item 1, a file in it
    looped = bytearray(good)
    struct.pack_into("<?", looped, tree + 512 + 220, True)  # item 1 a folder too: folder 0 in 1, 1 in 0
    struct.pack_into("<i", looped, tree + 40, 1)
    zero_chunks = bytearray(good)
    struct.pack_into("<I", zero_chunks, 0x128, 0)
    past_end = bytearray(good)
    table = chunk_data(struct.unpack_from("<i", good, tree + 512)[0])  # item 1's pointer table
    struct.pack_into("<I", past_end, table, 10**6)
    far_future = bytearray(good)
    struct.pack_into("<Q", far_future, tree + 512 + 12, 2**63)  # item 1's creation time: no date Python holds (the reader's OverflowError)
    for name, damaged, said in [("parent.bcf", cycle, "not one of its 3 items that is a folder"), ("cycle.bcf", looped, "form a cycle"), ("zero.bcf", zero_chunks, "chunks of 0 bytes"), ("pointer.bcf", past_end, "names chunk 1000000"), ("cut.bcf", good[: len(good) // 2], "truncated"), ("date.bcf", far_future, "OverflowError")]:
        path = tmp_path / name
        assert_read_fails_cleanly(path, bytes(damaged))
        for isolate in (True, False):
            with pytest.raises(ub.errors.UnreadableFileError, match=said):
                ub.read(path, isolate=isolate)


def test_bruker_decoder_crash_is_one_clean_error(tmp_path, bruker_map):
    """A pixel whose column lies (2^30 in a map 4 wide) makes RosettaSciIO's compiled decoder write far
    outside its array: a segmentation fault. ub.read decodes .bcf files in a child, so this is one
    error naming the file, and this process goes on."""
    import struct

    from instrument_files import bcf

    good = bcf(*bruker_map)
    tree, chunk_data = sfs_offsets(good)
    table = chunk_data(struct.unpack_from("<i", good, tree + 2 * 512)[0])  # item 2: SpectrumData0
    first_pixel = chunk_data(struct.unpack_from("<I", good, table)[0]) + 0x1A0 + 4  # after the map header and the line's pixel count
    crash = bytearray(good)
    struct.pack_into("<I", crash, first_pixel, 2**30)
    path = tmp_path / "lying_pixel.bcf"
    path.write_bytes(bytes(crash))
    for lazy in (False, True):
        with pytest.raises(ub.errors.IsolatedFailureError, match="lying_pixel.bcf"):
            ub.read(path, lazy=lazy)
    result = run("convert", path, tmp_path / "out.h5")
    assert_one_line_error(result, str(path))
    assert not (tmp_path / "out.h5").exists()
    assert (tmp_path / "lying_pixel.bcf").read_bytes() == bytes(crash)
