"""EDF and FabIO images: every ESRF data type and byte order, headers, stacks, series, bad files."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import usidbridge as ub
from usidbridge.errors import UnreadableFileError, UnsupportedFeatureError
from usidbridge.images import dataset_to_stack

from conftest import FIXTURES, need
from strategies import datasets
from test_cli import assert_one_line_error, run

ESRF_TYPES = {
    "SignedByte": np.int8,
    "UnsignedByte": np.uint8,
    "SignedShort": np.int16,
    "UnsignedShort": np.uint16,
    "SignedInteger": np.int32,
    "UnsignedInteger": np.uint32,
    "SignedLong": np.int32,
    "UnsignedLong": np.uint32,
    "Signed64": np.int64,
    "Unsigned64": np.uint64,
    "FloatValue": np.float32,
    "DoubleValue": np.float64,
}


@pytest.fixture(scope="module")
def fabio():
    return need("fabio")


def edf_bytes(frames, data_type, byte_order="LowByteFirst", extra=None):
    """EDF written by hand, as the ESRF format describes it: '{' key = value ; ... '}' padded to 512 bytes."""
    out = b""
    for index, frame in enumerate(frames):
        order = "<" if byte_order == "LowByteFirst" else ">"
        payload = frame.astype(np.dtype(frame.dtype).newbyteorder(order)).tobytes()
        entries = {
            "HeaderID": f"EH:{index + 1:06d}:000000:000000",
            "Image": str(index + 1),
            "ByteOrder": byte_order,
            "DataType": data_type,
            "Dim_1": str(frame.shape[1]),
            "Dim_2": str(frame.shape[0]),
            "Size": str(len(payload)),
            **(extra[index] if extra else {}),
        }
        text = "{\n" + "".join(f"{key} = {value} ;\n" for key, value in entries.items())
        padded = text.ljust(((len(text) + 2) // 512 + 1) * 512 - 2) + "}\n"
        out += padded.encode("ascii") + payload
    return out


@pytest.mark.parametrize("byte_order", ["LowByteFirst", "HighByteFirst"])
@pytest.mark.parametrize("data_type", sorted(ESRF_TYPES))
def test_every_esrf_type_and_byte_order(tmp_path, fabio, data_type, byte_order):
    dtype = np.dtype(ESRF_TYPES[data_type])
    info = np.iinfo(dtype) if dtype.kind in "iu" else np.finfo(dtype)
    frame = np.linspace(max(info.min, -1e6), min(info.max, 1e6), 20).astype(dtype).reshape(4, 5)
    path = tmp_path / "frame.edf"
    path.write_bytes(edf_bytes([frame], data_type, byte_order))
    assert path.read_bytes().index(b"}\n") + 2 == 512
    for lazy in (False, True):
        (dataset,) = ub.read(path, lazy=lazy)
        assert np.array_equal(dataset.to_ndarray(squeeze=True), frame)
        assert np.array_equal(dataset.to_ndarray(squeeze=True), fabio.open(str(path)).data)
        assert [dim.name for dim in dataset.pos.dims] == ["Y", "X"]


def test_headers_motors_counters_and_stacks(tmp_path, fabio):
    frames = [np.full((3, 4), value, np.float32) for value in range(3)]
    extra = [{"motor_mne": "th tth", "motor_pos": f"{index * 0.5} 12.0", "counter_mne": "mon det", "counter_pos": f"1000 {index}", "Title": "scan"} for index in range(3)]
    path = tmp_path / "stack.edf"
    path.write_bytes(edf_bytes(frames, "FloatValue", extra=extra))
    (dataset,) = ub.read(path)
    edf = dataset.metadata["edf"]
    assert edf["motors"] == {"th": 0.0, "tth": 12.0} and edf["counters"] == {"mon": 1000.0, "det": 0.0}
    assert edf["frame_motors"] == {"th": [0.0, 0.5, 1.0]} and edf["frame_counters"] == {"det": [0.0, 1.0, 2.0]}
    assert edf["header"] == {"Title": "scan"}
    assert [dim.name for dim in dataset.spec.dims] == ["Frame"] and dataset.shape == (12, 3)
    (as_images,) = ub.read(path, frames="position")
    assert [dim.name for dim in as_images.pos.dims] == ["Frame", "Y", "X"]
    for original in (dataset, as_images):
        out = ub.write(original, tmp_path / f"out_{original.shape[1]}.edf")
        (back,) = ub.read(out)
        assert back.pos.dims == original.pos.dims and back.spec.dims == original.spec.dims
        assert back.metadata["edf"] == edf
        assert np.array_equal(back.data, original.data)
        peer = fabio.open(str(out))
        assert peer.nframes == 3 and peer.getframe(2).header["motor_pos"] == "1.0 12.0"
        assert np.array_equal(peer.getframe(1).data, frames[1])
        assert ub.validate(ub.write(back, tmp_path / f"out_{original.shape[1]}.h5")).ok


def test_series_of_files_is_one_stack(tmp_path):
    for number in range(4):
        (tmp_path / f"scan_0003_{number:04d}.edf").write_bytes(edf_bytes([np.full((2, 3), number, np.uint16)], "UnsignedShort"))
    (tmp_path / "other_0001_0000.edf").write_bytes(edf_bytes([np.zeros((2, 3), np.uint16)], "UnsignedShort"))
    for lazy in (False, True):
        (dataset,) = ub.read(tmp_path / "scan_0003_0000.edf", series=True, lazy=lazy)
        assert dataset.nd_shape == (2, 3, 4)
        assert np.asarray(dataset.to_ndarray())[0, 0].tolist() == [0, 1, 2, 3]
    assert run("convert", tmp_path / "scan_0003_0000.edf", tmp_path / "series.h5", "-r", "series=true").returncode == 0
    assert ub.read(tmp_path / "series.h5")[0].nd_shape == (2, 3, 4)


def test_cbf_reads_through_the_same_module(tmp_path, fabio):
    from fabio.cbfimage import CbfImage

    data = np.arange(30, dtype=np.int32).reshape(5, 6)
    CbfImage(data=data).write(str(tmp_path / "frame.cbf"))
    (dataset,) = ub.read(tmp_path / "frame.cbf")
    assert np.array_equal(dataset.to_ndarray(squeeze=True), data)


def edf_able(dataset):
    plane = dataset_to_stack(dataset)[1][-2:]
    return dataset.dtype.kind != "c" and not dataset.dtype.fields and all(dim.is_uniform for dim in plane)


@given(dataset=datasets(allow_non_grid=False).filter(edf_able))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
def test_round_trip(tmp_path, dataset):
    dataset.metadata = {}
    (back,) = ub.read(ub.write(dataset, tmp_path / "rt.edf", overwrite=True))
    assert back.to_ndarray().tobytes() == np.ascontiguousarray(dataset.to_ndarray()).tobytes()
    assert back.quantity == dataset.quantity and back.units == dataset.units
    assert [dim.name for dim in back.dims] == [dim.name for dim in dataset.dims]
    for mine, theirs in zip(back.dims, dataset.dims):
        assert mine.units == theirs.units and np.array_equal(mine.values, theirs.values)


def test_refusals(tmp_path):
    rgb = np.zeros((2, 3), dtype=[("red", "u1"), ("green", "u1"), ("blue", "u1")])
    with pytest.raises(UnsupportedFeatureError):
        ub.write(ub.Dataset.from_ndarray(rgb, [ub.Dimension("Y", "", 2), ub.Dimension("X", "", 3)]), tmp_path / "c.edf")
    uneven = ub.Dataset.from_ndarray(np.zeros((2, 3)), [ub.Dimension("Y", "", [0, 1]), ub.Dimension("X", "", [0, 1, 5])])
    with pytest.raises(UnsupportedFeatureError, match="uniform"):
        ub.write(uneven, tmp_path / "u.edf")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UnsupportedFeatureError, match="no data type for float16"):
        ub.write(ub.Dataset.from_ndarray(np.zeros((2, 3), np.float16), [ub.Dimension("Y", "", 2), ub.Dimension("X", "", 3)]), tmp_path / "h.edf")
    assert list(tmp_path.iterdir()) == []


def test_written_stack_is_what_fabio_writes(tmp_path, fabio):
    """Big-endian input, frames over two leading dims, long headers: FabIO reads every frame and key of our file."""
    data = np.arange(2 * 3 * 5 * 4, dtype=">u2").reshape(2, 5, 4, 3)  # (Z, Y, X, Frame): frames spectroscopic
    dataset = ub.Dataset.from_ndarray(data, [ub.Dimension("Z", "mm", 2), ub.Dimension("Y", "um", 5), ub.Dimension("X", "um", 4)], [ub.Dimension("Frame", "", 3)], metadata={"edf": {"header": {"Title": "x" * 700}}})
    out = ub.write(dataset, tmp_path / "stack.edf")
    peer = fabio.open(str(out))
    assert peer.nframes == 6
    for z in range(2):
        for frame in range(3):
            image = peer.getframe(z * 3 + frame)
            assert np.array_equal(image.data, data[z, :, :, frame]) and image.header["Title"] == "x" * 700
    (back,) = ub.read(out)
    assert back.pos.dims == dataset.pos.dims and np.array_equal(back.to_ndarray(), data)


def test_bad_edf_files(tmp_path):
    good = edf_bytes([np.arange(12, dtype=np.int32).reshape(3, 4)], "SignedInteger")
    cases = {
        "truncated.edf": (good[:-10], "truncated"),
        "lies.edf": (good.replace(b"Dim_2 = 3 ;", b"Dim_2 = 9 ;"), "byte offset"),
        "unknown_type.edf": (good.replace(b"DataType = SignedInteger ;", b"DataType = Quaternion ;"), "DataType 'Quaternion'"),
        "garbage.edf": (b"{\nHeaderID" + bytes(range(256)) * 3, "FabIO"),
        "no_pixels.edf": (good.replace(b"Dim_1 = 4 ;", b"Dim_1 = 0 ;").replace(b"Size = 48 ;", b"Size = 0 ;"), "no image"),  # fuzz 2600301: was a ModelError without the file
    }
    for name, (content, words) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(UnreadableFileError, match=words):
            ub.read(path)
        assert_one_line_error(run("convert", path, tmp_path / f"{path.stem}.h5"), str(path))
        assert not (tmp_path / f"{path.stem}.h5").exists()


FABIO_WRITERS = [("adscimage", "AdscImage", "frame.img"), ("dtrekimage", "DtrekImage", "frame_dtrek.img"), ("numpyimage", "NumpyImage", "frame.npy"), ("cbfimage", "CbfImage", "frame.cbf"), ("marccdimage", "MarccdImage", "frame.mccd"), ("pnmimage", "PnmImage", "frame.pnm")]


@pytest.mark.parametrize(("module", "cls", "name"), FABIO_WRITERS)
def test_every_fabio_format_is_detected_by_asking_fabio(tmp_path, module, cls, name):
    """Files written by fabio's own writers are detected without --from (magic bytes first, then FabIO) and read back exactly."""
    import importlib

    need("fabio")
    data = (np.arange(30 * 40) % 1000).astype(np.int32 if module == "cbfimage" else np.uint16).reshape(30, 40)
    path = tmp_path / name
    getattr(importlib.import_module(f"fabio.{module}"), cls)(data=data).write(str(path))
    assert ub.registry.detect(path).name == ("tiff" if module == "marccdimage" else "edf")  # MarCCD is a TIFF: the magic bytes decide
    (dataset,) = ub.read(path)
    assert np.array_equal(dataset.to_ndarray(squeeze=True), data)
    assert ub.validate(ub.write(dataset, tmp_path / "out.h5")).ok


def test_fabio_reader_raises_only_our_errors(tmp_path):
    need("fabio")
    from fabio import pnmimage

    rgb = np.zeros((5, 6, 3), np.uint8)
    pnmimage.PnmImage(data=rgb).write(str(tmp_path / "rgb.pnm"))  # FabIO cannot read back its own colour PNM
    for path in (tmp_path / "rgb.pnm", FIXTURES / "demo_scans.spec"):
        assert_one_line_error(run("convert", path, tmp_path / "out.h5", "--from", "edf"), str(path))


def test_metadata_cannot_override_the_keys_that_describe_the_data(tmp_path, fabio):
    """Header keys that describe the frame (Dim_N, Size, DataType, ...) are ours, whatever the metadata says, as in FabIO."""
    dataset = ub.Dataset.from_ndarray(np.arange(12, dtype=np.float32).reshape(3, 4), [ub.Dimension("Y", "", 3), ub.Dimension("X", "", 4)], metadata={"edf": {"header": {"Dim_1": "999", "size": "1", "Title": "kept"}}})
    peer = fabio.open(str(ub.write(dataset, tmp_path / "keys.edf")))
    assert peer.data.shape == (3, 4) and peer.header["Title"] == "kept" and np.array_equal(peer.data, dataset.to_ndarray(squeeze=True))


def test_eager_read_is_the_file_order_in_memory_and_writes_like_the_lazy_read(tmp_path):
    frames = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    path = tmp_path / "stack.edf"
    path.write_bytes(edf_bytes(list(frames), "FloatValue"))
    (eager,), (lazy,) = ub.read(path), ub.read(path, lazy=True)
    assert isinstance(eager.data, np.ndarray) and eager.data.strides == (4, 6 * 7 * 4)  # pixels x frames, a view of the frames as read
    assert np.array_equal(eager.to_ndarray(), np.moveaxis(frames, 0, -1)) and np.array_equal(eager.data, np.asarray(lazy.data))
    for suffix in (".h5", ".nxs", ".nc", ".tif", ".edf", ".spec"):
        from_eager, from_lazy = (ub.read(ub.write(dataset, tmp_path / f"{name}{suffix}")) for name, dataset in (("eager", eager), ("lazy", lazy)))
        assert len(from_eager) == len(from_lazy) and all(np.array_equal(a.data, b.data) for a, b in zip(from_eager, from_lazy)), suffix
        if suffix != ".spec":  # SPEC text gives the pixel coordinates back as columns of their own
            assert np.array_equal(from_eager[0].to_ndarray(), eager.to_ndarray()), suffix


def test_a_file_cut_while_being_read_is_one_clear_error(tmp_path):
    from usidbridge.converters.edf import _Frames

    path = tmp_path / "cut.edf"
    path.write_bytes(edf_bytes([np.ones((4, 4), np.uint16)] * 2, "UnsignedShort"))
    stack = np.empty((2, 4, 4), np.uint16)
    with pytest.raises(UnreadableFileError, match="ended 24 bytes before the end of its data .was it cut while being read") as error:
        _Frames._read_into(stack, path, [512, path.stat().st_size - 8])
    assert str(path) in str(error.value)


def test_an_eager_series_is_read_once_into_one_array(tmp_path):
    for number in range(3):
        (tmp_path / f"run_0001_{number:04d}.edf").write_bytes(edf_bytes([np.full((2, 3), number, np.int32), np.full((2, 3), 10 + number, np.int32)], "SignedInteger"))
    (dataset,) = ub.read(tmp_path / "run_0001_0000.edf", series=True)
    stack = dataset.data.base
    while stack.base is not None:
        stack = stack.base
    assert stack.nbytes == dataset.data.nbytes  # one array of all the frames, viewed
    assert np.asarray(dataset.to_ndarray())[1, 2].tolist() == [0, 10, 1, 11, 2, 12]


GENERAL_HEADER = ("{\nEDF_DataFormatVersion = 2.0 ;\nDim_18446744073709551617 = 1 ;\n".ljust(510) + "}\n").encode("ascii")


@pytest.mark.parametrize(
    "hostile, said",
    [
        ({"Dim_18446744073709551617": "1"}, "the EDF header at byte 2098176 declares a dimension Dim_18446744073709551617"),
        ({"Size": "-512"}, "the EDF header at byte 2098176 declares -512 bytes of data"),
        ({"Size": "1e400"}, "OverflowError"),
        ("general", "the EDF header at byte 0 declares a dimension Dim_18446744073709551617"),
    ],
)
def test_a_later_header_that_would_make_fabio_loop_is_refused(tmp_path, hostile, said):
    """FabIO reads every frame's header before any data, and loops for ever on some: a huge Dim_N
    (it counts up to N), a Size of -512 (it seeks back and reads the same header again). The third
    frame's header, past the first MiB, or a general header that every frame takes over, is
    refused as the first frame's is. Each read runs in a child that must end within a minute: these
    files hung the reader before."""
    frames = [np.full((512, 1024), index, np.uint16) for index in range(3)]  # 1 MiB each
    path = tmp_path / "stack.edf"
    if hostile == "general":
        path.write_bytes(GENERAL_HEADER + edf_bytes(frames, "UnsignedShort"))
    else:
        path.write_bytes(edf_bytes(frames, "UnsignedShort", extra=[{}, {}, hostile]))
    before = path.read_bytes()
    for lazy in (False, True):
        script = f"import usidbridge as ub; ub.read({str(path)!r}, lazy={lazy})"
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and "UnreadableFileError" in result.stderr and said in result.stderr and str(path) in result.stderr
    assert path.read_bytes() == before


@pytest.mark.parametrize("key", [b"Dim_18446744073709551617", b"dim_99", b"DIM_9"])
def test_an_edf_header_declaring_too_many_dimensions_is_refused_before_fabio(tmp_path, key):
    """FabIO counts up to the largest Dim_N key (for ever, for a huge N): any case of the key is refused first."""
    good = edf_bytes([np.arange(12, dtype=np.int32).reshape(3, 4)], "SignedInteger")
    path = tmp_path / "many_dims.edf"
    path.write_bytes(good.replace(b"Dim_2 = 3 ;", b"Dim_2 = 3 ; " + key + b" = 1 ;", 1))
    with pytest.raises(UnreadableFileError, match=f"declares a dimension {key.decode()}; EDF frames have at most"):
        ub.read(path)
    path.write_bytes(good.replace(b"Dim_2 = 3 ;", b"Dim_2 = 3 ; X" + key + b" = 1 ;", 1))  # another key that ends like one
    (dataset,) = ub.read(path)
    assert dataset.shape == (12, 1)


def plain_and_fabio_reads(path, monkeypatch, **options):
    """The file read as usual and with FabIO forced (no `_plain_stack`), eagerly and lazily."""
    import sys

    from usidbridge import registry

    module = sys.modules[type(registry.get("edf")).__module__]
    usual = [ub.read(path, lazy=lazy, **options)[0] for lazy in (False, True)]
    with monkeypatch.context() as patch:
        patch.setattr(module, "_plain_stack", lambda path, blocks: None)
        forced = [ub.read(path, lazy=lazy, **options)[0] for lazy in (False, True)]
    return usual, forced


def assert_same_reads(usual, forced):
    for mine, theirs in zip(usual, forced):
        data, reference = np.asarray(mine.to_ndarray()), np.asarray(theirs.to_ndarray())
        assert data.dtype == reference.dtype and data.tobytes() == reference.tobytes()
        assert mine.dims == theirs.dims and (mine.quantity, mine.units, mine.name) == (theirs.quantity, theirs.units, theirs.name)
        assert mine.metadata == theirs.metadata


@pytest.mark.parametrize("byte_order", ["LowByteFirst", "HighByteFirst"])
@pytest.mark.parametrize("data_type", sorted(ESRF_TYPES))
def test_plain_stacks_read_without_fabio_as_fabio_reads_them(tmp_path, monkeypatch, data_type, byte_order):
    """A file of uncompressed 2-D frames of one type is read from the header walk, without FabIO's
    per-frame parsing: the same data, dims and header metadata as through FabIO, eager and lazy,
    with motors, counters, repeated keys and padding in the headers."""
    import sys

    from usidbridge import registry

    module = sys.modules[type(registry.get("edf")).__module__]
    frames = [(np.arange(12) * (index + 1)).astype(ESRF_TYPES[data_type]).reshape(3, 4) for index in range(3)]
    extra = [{"motor_mne": "x y", "motor_pos": f"{index} 2.5", "counter_mne": "mon", "counter_pos": "7", "Title": "a = b", "Repeated": "first"} for index in range(3)]
    path = tmp_path / "plain.edf"
    path.write_bytes(edf_bytes(frames, data_type, byte_order, extra).replace(b"Repeated = first ;", b"Repeated = first ; Repeated = last ;"))
    assert module._precheck(path) is not None  # the fast path is the one taken
    usual, forced = plain_and_fabio_reads(path, monkeypatch)
    assert_same_reads(usual, forced)
    assert usual[0].metadata["edf"]["header"]["Repeated"] == "last"


def test_files_fabio_must_read_take_its_path_and_ours_read_alike(tmp_path, monkeypatch):
    """Files our walk does not call plain (compressed, general header, odd key case, no Size, one
    frame of another shape, trailing bytes) go through FabIO; the fixture and a file we write read
    alike both ways."""
    import sys

    from usidbridge import registry

    module = sys.modules[type(registry.get("edf")).__module__]
    frames = [np.arange(12, dtype=np.uint16).reshape(3, 4)] * 2
    good = edf_bytes(frames, "UnsignedShort")
    odd = {
        "general header": ("{\nEDF_DataFormatVersion = 2.0 ;\nmotor_mne = z ;\n".ljust(510) + "}\n").encode() + good,
        "lower-case key": good.replace(b"DataType =", b"datatype =", 1),
        "no Size": good.replace(b"Size = 24 ;", b"Sizf = 24 ;"),
        "another shape": edf_bytes([frames[0], np.arange(8, dtype=np.uint16).reshape(2, 4)], "UnsignedShort"),
        "trailing bytes": good + b"\x00" * 3,
    }
    for name, content in odd.items():
        path = tmp_path / f"{name.replace(' ', '_')}.edf"
        path.write_bytes(content)
        assert module._precheck(path) is None, name
    written = tmp_path / "written.edf"
    ub.write(ub.Dataset.from_ndarray(np.arange(24.0).reshape(2, 3, 4), [ub.Dimension("Y", "m", 2), ub.Dimension("X", "m", 3)], [ub.Dimension("E", "eV", 4)], quantity="I", units="a.u."), written)
    for path in (FIXTURES / "detector_frames.edf", written):
        assert module._precheck(path) is not None
        for options in ({}, {"frames": "position"}):
            assert_same_reads(*plain_and_fabio_reads(path, monkeypatch, **options))


def test_the_type_table_is_fabios():
    """The ESRF type names the header walk reads without FabIO are FabIO's, with the same numpy types."""
    from fabio.edfimage import DATA_TYPES

    from usidbridge.converters.edf import EDF_TYPES

    assert {name: np.dtype(kind) for name, kind in EDF_TYPES.items()} == {name: np.dtype(kind) for name, kind in DATA_TYPES.items()}
