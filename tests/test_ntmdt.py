"""NT-MDT .mdt: the Nova image against its MDA calibrations and scan parameters read here; files of
the other layouts (a classic scanned frame, a Raman-like cube, a sweep) built here byte by byte
from the published layout; damaged files."""

import re
import struct

import h5py
import numpy as np
import pytest

import usidbridge as ub
from usidbridge import registry

from conftest import assert_read_fails_cleanly
from instrument_files import mdt_calibration, mdt_file, mdt_frame, mdt_mda, mdt_scanned

MDT = "spm/ntmdt.mdt"


def frames_of(raw: bytes) -> list[tuple[int, int, bytes]]:
    """(type, start, body) of every frame: a 33-byte file header, then frames of 22-byte headers."""
    (last,) = struct.unpack_from("<H", raw, 12)
    found, start = [], 33
    for _ in range(last + 1):
        size, kind = struct.unpack_from("<IH", raw, start)
        found.append((kind, start, raw[start + 22 : start + size]))
        start += size
    return found


def mda_of(body: bytes) -> dict:
    """An MDA frame's title, calibrations (bias, scale, count, unit, data type) and the data after them."""
    head_size = struct.unpack_from("<I", body)[0]
    name, comment, view, spec, source = struct.unpack_from("<5I", body, 44)
    title = body[head_size : head_size + name].decode("cp1251")
    xml = body[head_size + name : head_size + name + comment].decode("utf-16-le")
    position = head_size + name + comment + view + spec + source + 4
    struct_length = struct.unpack_from("<I", body, position)[0]
    _cells, _cell, dimensions, measurands = struct.unpack_from("<QIII", body, position + 4)
    position += 4 + struct_length
    calibrations = []
    for _ in range(dimensions + measurands):
        total, length, name_length, comment_length, unit_length = struct.unpack_from("<5I", body, position)
        bias, scale, low, high, data_type = struct.unpack_from("<ddQQi", body, position + 20 + 24)
        text = position + 8 + length
        unit = body[text + name_length + comment_length : text + name_length + comment_length + unit_length].decode()
        calibrations.append({"bias": bias, "scale": scale, "count": high - low + 1, "unit": unit, "type": data_type})
        position += total
    return {"title": title, "xml": xml, "dimensions": calibrations[:dimensions], "measurands": calibrations[dimensions:], "data": body[position:]}


def test_nova_image_against_its_calibrations(shared_data, tmp_path, usid, same_units):
    path = shared_data / MDT
    raw = path.read_bytes()
    assert registry.detect(path).name == "ntmdt"
    found = frames_of(raw)
    assert [kind for kind, *_ in found] == [3, 106, 190]  # text, an MDA image, Nova curves
    frame = mda_of(found[1][2])
    x, y = frame["dimensions"]
    (current,) = frame["measurands"]
    assert (x["unit"], current["unit"], current["type"]) == ("um", "nA", -13320)  # float64
    stored = np.frombuffer(frame["data"], "<f8", count=x["count"] * y["count"]).reshape(y["count"], x["count"])

    (dataset,) = ub.read(path)
    assert (dataset.name, dataset.quantity) == (frame["title"], "Iprobe") == ("1F:Iprobe", "Iprobe")
    assert same_units(dataset.units, "A") and same_units(dataset.pos.dims[0].units, "m")
    np.testing.assert_allclose(dataset.to_ndarray(squeeze=True), (current["bias"] + current["scale"] * stored) * 1e-9, rtol=1e-12)
    y_dim, x_dim = dataset.pos.dims
    np.testing.assert_allclose(x_dim.values, (x["bias"] + x["scale"] * np.arange(x["count"])) * 1e-6, rtol=1e-12)
    np.testing.assert_allclose(y_dim.values, (y["bias"] + y["scale"] * np.arange(y["count"])) * 1e-6, rtol=1e-12)
    # the scan parameters of the frame's XML comment (µm) put the centre and the size where the calibration does
    parameter = lambda name: float(re.search(rf"<{name}>([^<]+)</{name}>", frame["xml"]).group(1)) * 1e-6  # noqa: E731
    assert np.mean(x_dim.values) == pytest.approx(parameter("scshXCentre"), rel=1e-9)
    assert np.ptp(x_dim.values) == pytest.approx(parameter("scshXSize"), rel=1e-6)
    metadata = dataset.metadata["ntmdt"]
    assert metadata["frame"]["parameters"]["Parameters"]["Common"]["BuildID"].startswith("Nova")
    assert metadata["not_read"] == ["frame 2: curves (Nova)"] and metadata["text"] == ["text text text "]

    out = ub.write([dataset], tmp_path / "ntmdt.h5")
    assert ub.validate(out).ok
    with h5py.File(out, "r") as file:
        assert all(usid.hdf_utils.check_if_main(main) for main in usid.hdf_utils.get_all_main(file))
    assert ub.converters.netcdf.to_xarray(ub.read(out)[0]).dims[:2] == ("Y", "X")  # positions navigate


def test_layouts_without_a_shared_file(tmp_path, same_units):
    """A classic scanned frame (int16 and axis scales), a Raman-like MDA cube (the spectrum fastest,
    as Gwyddion reads it), and a sweep (no dimension: the first measurand is the sweep)."""
    rng = np.random.default_rng(3)
    stored = rng.integers(-3000, 3000, (3, 4))
    cube = rng.random((2, 3, 5)).astype("<f4")
    bias, current = np.linspace(-1, 1, 6), rng.random(6)
    sweep = np.empty(6, [("bias", "<f8"), ("current", "<f4")])
    sweep["bias"], sweep["current"] = bias, current
    path = tmp_path / "layouts.mdt"
    path.write_bytes(mdt_file(
        mdt_scanned(4, 3, stored, "Topography"),
        mdt_mda("Raman", [mdt_calibration("", "um", 10.0, 0.5, 3, 0), mdt_calibration("", "um", 20.0, 0.25, 2, 0), mdt_calibration("Raman shift", "1/cm", 100.0, 2.0, 5, 0)],
             [mdt_calibration("Intensity", "", 0.0, 3.0, 1, -(4 + 23 * 256))], 4, cube.tobytes()),
        mdt_mda("IV", [], [mdt_calibration("Bias", "V", 0.0, 1.0, 6, -(8 + 52 * 256)), mdt_calibration("Current", "nA", 0.0, 1.0, 1, -(4 + 23 * 256))], 12, sweep.tobytes()),
    ))
    topography, raman, iv = ub.read(path)

    assert (topography.name, topography.quantity) == ("Topography", "Topography") and same_units(topography.units, "m")
    np.testing.assert_allclose(topography.to_ndarray(squeeze=True), (5.0 + 0.1 * stored) * 1e-9, rtol=1e-7)
    y, x = topography.pos.dims
    np.testing.assert_allclose(x.values, (1.5 + 0.02 * np.arange(4)) * 1e-6, rtol=1e-6)
    np.testing.assert_allclose(y.values, 0.02e-6 * np.arange(3), rtol=1e-6)
    assert topography.metadata["ntmdt"]["frame"]["setpoint_nA"] == 2.5 and topography.metadata["ntmdt"]["frame"]["bias_voltage_V"] == -0.75 and topography.metadata["ntmdt"]["frame"]["mode"] == "AFM"

    assert [dim.name for dim in raman.pos.dims] == ["Y", "X"] and [dim.name for dim in raman.spec.dims] == ["Raman shift"]
    np.testing.assert_allclose(raman.to_ndarray(), 3.0 * cube.astype(np.float64), rtol=1e-7)
    np.testing.assert_allclose(raman.pos.dims[1].values, (10.0 + 0.5 * np.arange(3)) * 1e-6)
    np.testing.assert_allclose(raman.spec.dims[0].values, 100.0 + 2.0 * np.arange(5))
    assert raman.spec.dims[0].units == "1/cm"

    assert iv.pos.size == 1 and iv.spec.dims[0].name == "Bias" and iv.spec.dims[0].units == "V"
    np.testing.assert_allclose(iv.spec.dims[0].values, bias)
    np.testing.assert_allclose(iv.to_ndarray(squeeze=True), current.astype("<f4") * 1e-9, rtol=1e-7)
    assert same_units(iv.units, "A")
    assert ub.validate(ub.write([topography, raman, iv], tmp_path / "layouts.h5")).ok


@pytest.mark.parametrize("damage", ["truncated", "zeroed tail", "garbage", "frame size lies", "no image frame"])
def test_damaged_files_are_one_clean_error(shared_data, tmp_path, damage):
    raw = (shared_data / MDT).read_bytes()
    damaged = {
        "truncated": raw[: len(raw) // 3],
        "zeroed tail": raw[:800] + bytes(len(raw) - 800),
        "garbage": raw[:40] + np.random.default_rng(5).bytes(5000),
        "frame size lies": raw[:737] + struct.pack("<I", 2**31) + raw[741:],
        "no image frame": mdt_file(mdt_frame(107, b"", bytes(64))),
    }[damage]
    assert_read_fails_cleanly(tmp_path / "damaged.mdt", damaged)
