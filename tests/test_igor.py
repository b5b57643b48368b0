"""Igor binary waves: Asylum AFM images and force curves against the file's own header and bytes
(parsed here, not by igor2), any other wave by its own scaling (a version-5 wave built here), and
damaged waves."""

import struct

import h5py
import numpy as np
import pytest

import usidbridge as ub
from usidbridge import registry
from usidbridge.errors import UnreadableFileError

from conftest import assert_read_fails_cleanly, need

ASYLUM_IMAGE = "spm/asylum_pfm_5ch.ibw"
ASYLUM_FORCE = "spm/asylum_force_curve.ibw"
DATA_START = 64 + 320  # version 5: BinHeader5, WaveHeader5, then the data


def header_of(path):
    """nDim, the note's Key: value lines, and the data (float32, Igor's column-major order), read from the bytes."""
    raw = path.read_bytes()
    (version,) = struct.unpack_from("<h", raw, 0)
    assert version == 5
    wfm_size, _formula, note_size = struct.unpack_from("<3i", raw, 4)
    shape = [size for size in struct.unpack_from("<4i", raw, 132) if size]
    (npnts,) = struct.unpack_from("<i", raw, 76)
    data = np.frombuffer(raw, "<f4", count=npnts, offset=DATA_START).reshape(shape, order="F")
    note_text = raw[64 + wfm_size : 64 + wfm_size + note_size].decode("latin-1")
    note = {}
    for line in note_text.split("\r"):
        key, _, value = line.partition(":")
        if _:
            note[key.strip()] = value.strip()
    return data, note



def test_asylum_image_channels_positions_and_units(shared_data, same_units, tmp_path, usid):
    path = shared_data / ASYLUM_IMAGE
    assert registry.detect(path).name == "igor"
    data, note = header_of(path)
    datasets = ub.read(path)
    expected = {"HeightRetrace": "m", "AmplitudeRetrace": "m", "DeflectionRetrace": "m", "PhaseRetrace": "degree", "UserIn0Retrace": "V"}
    assert [dataset.quantity for dataset in datasets] == list(expected)  # Igor's labels cut at their NUL ('PhaseRetrace\0race')
    x = float(note["XOffset"]) + np.linspace(0, float(note["FastScanSize"]), int(note["ScanPoints"]))
    y = float(note["YOffset"]) + np.linspace(0, float(note["SlowScanSize"]), int(note["ScanLines"]))
    for layer, dataset in enumerate(datasets):
        assert same_units(dataset.units, expected[dataset.quantity])
        (y_dim, x_dim), (placeholder,) = dataset.pos.dims, dataset.spec.dims
        assert (y_dim.name, x_dim.name, y_dim.units, x_dim.units, placeholder.size) == ("Y", "X", "m", "m", 1)
        np.testing.assert_allclose(x_dim.values, x, rtol=1e-12)
        np.testing.assert_allclose(y_dim.values, y, rtol=1e-12)
        assert np.array_equal(dataset.to_ndarray(squeeze=True), data[:, :, layer].T)  # rows are scan lines (Y), columns X
        assert dataset.metadata["igor"]["note"]["SpringConstant"] == float(note["SpringConstant"])
    assert len(datasets[0].metadata["igor"]["note"]) > 300
    out = ub.write(datasets, tmp_path / "pfm.h5")
    assert ub.validate(out).ok
    with h5py.File(out, "r") as file:
        mains = usid.hdf_utils.get_all_main(file)
        assert len(mains) == 5 and all(usid.hdf_utils.check_if_main(main) for main in mains)
        assert {main.parent.parent.name for main in mains} == {"/Measurement_000"}
        assert all(file[main.attrs["Position_Indices"]].parent.name == "/Measurement_000" for main in mains)  # one scan: shared positions


def test_asylum_force_curve_over_z(shared_data, tmp_path, usid):
    path = shared_data / ASYLUM_FORCE
    data, note = header_of(path)
    raw, deflection = ub.read(path)
    assert (raw.quantity, deflection.quantity) == ("Raw", "Defl") and raw.units == deflection.units == "m"
    (z,) = deflection.spec.dims
    assert (z.name, z.units) == ("Z", "m") and np.array_equal(z.values, data[:, 2].astype(np.float64))
    assert np.array_equal(deflection.to_ndarray(squeeze=True), data[:, 1]) and deflection.pos.size == 1
    force = deflection.metadata["igor"]["force_curve"]
    assert force["spring_constant"] == float(note["SpringConstant"]) and force["invols"] == float(note["InvOLS"])
    assert force["segments"] == [int(index) for index in note["Indexes"].strip(",").split(",")]
    out = ub.write([raw, deflection], tmp_path / "force.h5")
    assert ub.validate(out).ok
    hs = need("hyperspy.api")
    signal = hs.load(out, file_format=ub.converters.hyperspy)[1]
    assert signal.axes_manager.signal_axes[0].name == "Z" and signal.axes_manager.signal_shape == (data.shape[0],)


def write_wave(path, data, scale, offset, dim_units, data_units, labels=(), note=b"", name=b"cits"):
    """A version-5 Igor binary wave of float32 `data` (as Igor's column-major array), written from Igor's TN003 layout."""
    data = np.asarray(data, np.float32)
    dims = list(data.shape) + [0] * (4 - data.ndim)
    wave_data = data.tobytes(order="F")
    label_block = b"".join(label.encode().ljust(32, b"\x00") for label in labels)
    label_sizes = [len(label_block), 0, 0, 0] if labels else [0, 0, 0, 0]
    wave_header = struct.pack(
        "<iIIih h6sh32sii4i4d4d4s16shhddi4i4ii16ihhhcciihhii",
        0, 0, 0, data.size, 2, 0, b"", 1, name, 0, 0, *dims, *(list(scale) + [1.0] * (4 - len(scale))), *(list(offset) + [0.0] * (4 - len(offset))),
        data_units, b"".join(unit.ljust(4, b"\x00") for unit in dim_units).ljust(16, b"\x00"), 0, 0, 0.0, 0.0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        *([0] * 16), 0, 0, 0, b"\x00", b"\x00", 0, 0, 0, 0, 0, 0,
    )
    assert len(wave_header) == 320
    wfm_size = len(wave_header) + len(wave_data)
    bin_header = struct.pack("<hhiiii4i4iiii", 5, 0, wfm_size, 0, len(note), 0, 0, 0, 0, 0, *label_sizes, 0, 0, 0)
    head = bytearray(bin_header + wave_header)
    checksum = -int(np.frombuffer(bytes(head[:380]), "<i2").astype(np.int64).sum())
    struct.pack_into("<h", head, 2, ((checksum + 32768) % 65536) - 32768)
    path.write_bytes(bytes(head) + wave_data + note + label_block)
    return path


def test_any_wave_by_its_own_scaling(tmp_path, usid):
    """A CITS cube exported to .ibw: x, y over dims 0, 1, the bias over dim 2, each from sfA / sfB and dimUnits."""
    cube = np.random.default_rng(7).normal(size=(4, 3, 6)).astype(np.float32)  # Igor's (x, y, bias)
    path = write_wave(tmp_path / "cits.ibw", cube, (2e-10, 3e-10, 0.05), (1e-9, -1e-9, -0.1), (b"m", b"m", b"V"), b"A", labels=["x_tip"])
    assert registry.detect(path).name == "igor"
    (dataset,) = ub.read(path)
    (y, x), (bias,) = dataset.pos.dims, dataset.spec.dims
    assert (x.name, y.name, bias.name) == ("x_tip", "y", "z") and (x.units, y.units, bias.units, dataset.units) == ("m", "m", "V", "A")
    np.testing.assert_allclose(x.values, 1e-9 + 2e-10 * np.arange(4))
    np.testing.assert_allclose(bias.values, -0.1 + 0.05 * np.arange(6))
    assert np.array_equal(dataset.to_ndarray(), cube.transpose(1, 0, 2))
    assert ub.validate(ub.write(dataset, tmp_path / "cits.h5")).ok
    spectrum = write_wave(tmp_path / "spectrum.ibw", np.arange(5.0), (0.5,), (10.0,), (b"eV",), b"cts")
    (line,) = ub.read(spectrum)
    assert line.pos.size == 1 and line.spec.dims[0].values.tolist() == [10.0, 10.5, 11.0, 11.5, 12.0] and line.units == "cts"


@pytest.mark.parametrize("damage", ["truncated header", "truncated data", "zeroed", "garbage"])
def test_damaged_waves_are_one_clean_error(shared_data, tmp_path, damage):
    raw = (shared_data / ASYLUM_IMAGE).read_bytes()
    damaged = {
        "truncated header": raw[:200],
        "truncated data": raw[: DATA_START + 1000],
        "zeroed": raw[:2] + bytes(len(raw) - 2),
        "garbage": raw[:2] + np.random.default_rng(1).bytes(5000),
    }[damage]
    path = tmp_path / "damaged.ibw"
    assert_read_fails_cleanly(path, damaged)


@pytest.mark.parametrize("lie", ["label size", "negative note size", "points"])
def test_declared_sizes_beyond_the_file_are_refused_before_igor2(tmp_path, lie):
    """igor2 builds a struct format of one character per declared item, so a size the file cannot
    hold (a fuzzed dimension-label size of 2^30) cost seconds and a GiB before its MemoryError.
    The headers' sizes are checked against the file first: one error naming the file and the sizes."""
    path = write_wave(tmp_path / "wave.ibw", np.arange(6.0).reshape(2, 3), (1.0, 1.0), (0.0, 0.0), (b"m", b"m"), b"V", labels=("a",))
    raw = bytearray(path.read_bytes())
    if lie == "label size":
        struct.pack_into("<i", raw, 44, 2**30)  # dimLabelsSize[1]
    elif lie == "negative note size":
        struct.pack_into("<i", raw, 12, -5)  # noteSize
    else:
        struct.pack_into("<i", raw, 64 + 12, 2**30)  # npnts
    path.write_bytes(bytes(raw))
    said = "declares" + (" 1073741824 points" if lie == "points" else " sections of")
    with pytest.raises(UnreadableFileError, match=said) as error:
        ub.read(path)
    assert str(path) in str(error.value)
