"""Nanonis .sxm, .dat and .3ds against numbers read from their headers and bytes here; a turned
frame scanned downwards; detection beside SPEC; damaged files."""

import h5py
import numpy as np
import pytest

import usidbridge as ub
from usidbridge import registry
from usidbridge.errors import UsidBridgeError

from conftest import assert_read_fails_cleanly, need

SXM = "spm/nanonis_ncafm.sxm"
DAT = "spm/nanonis_bias_spectroscopy.dat"
GRID = "spm/nanonis_sts_grid.3ds"



def sxm_parts(raw: bytes):
    """Header sections and the float32 planes, as the Nanonis manual lays them out."""
    end = raw.index(b":SCANIT_END:")
    sections = {}
    for block in raw[:end].decode("latin-1").split("\n:")[1:]:
        key, _, value = block.partition(":\n")
        sections[key] = value.strip("\n")
    start = raw.index(b"\x1a\x04", end) + 2
    return sections, start


def test_sxm_every_channel_and_direction(shared_data, same_units, tmp_path, usid):
    path = shared_data / SXM
    raw = path.read_bytes()
    sections, start = sxm_parts(raw)
    columns, rows = map(int, sections["SCAN_PIXELS"].split())
    width, height = map(float, sections["SCAN_RANGE"].split())
    x0, y0 = map(float, sections["SCAN_OFFSET"].split())
    channels = [line.split("\t")[1:5] for line in sections["DATA_INFO"].strip().splitlines()[1:]]
    planes = np.frombuffer(raw, ">f4", offset=start, count=2 * len(channels) * rows * columns).reshape(-1, rows, columns)
    assert registry.detect(path).name == "nanonis"
    datasets = ub.read(path)
    assert [dataset.name for dataset in datasets] == [f"{name} {direction}" for _, name, _, _ in channels for direction in ("forward", "backward")]
    assert sections["SCAN_DIR"].strip() == "up" and float(sections["SCAN_ANGLE"]) == 0
    for number, dataset in enumerate(datasets):
        _, name, unit, _ = channels[number // 2]
        assert dataset.quantity == name and same_units(dataset.units, unit)
        (y, x) = dataset.pos.dims
        np.testing.assert_allclose(x.values, x0 - width / 2 + np.arange(columns) * width / columns, rtol=1e-12)
        np.testing.assert_allclose(y.values, y0 - height / 2 + np.arange(rows) * height / rows, rtol=1e-12)
        expected = planes[number] if number % 2 == 0 else planes[number][:, ::-1]  # backward lines are stored right to left
        assert np.array_equal(dataset.to_ndarray(squeeze=True), expected, equal_nan=True)
    z = datasets[0].to_ndarray()
    assert np.nanmax(np.abs(z)) < 1e-6  # calibrated: metres, not volts
    out = ub.write(datasets, tmp_path / "ncafm.h5")
    assert ub.validate(out).ok
    with h5py.File(out, "r") as file:
        mains = usid.hdf_utils.get_all_main(file)
        assert len(mains) == 18 and all(usid.hdf_utils.check_if_main(main) for main in mains)


def test_sxm_turned_frame_scanned_down(shared_data, tmp_path):
    """SCAN_ANGLE turns the frame clockwise about its centre (as the per-point positions of a .3ds
    grid show): positions are then non-grid; SCAN_DIR down stores the top line first."""
    raw = (shared_data / SXM).read_bytes()
    sections, start = sxm_parts(raw)
    edited = raw[:start].replace(b":SCAN_ANGLE:\n            0.000E+0", b":SCAN_ANGLE:\n            3.000E+1").replace(b":SCAN_DIR:\nup", b":SCAN_DIR:\ndown") + raw[start:]
    path = tmp_path / "turned.sxm"
    path.write_bytes(edited)
    z = ub.read(path)[2]  # Input_4 forward: not constant
    columns, rows = map(int, sections["SCAN_PIXELS"].split())
    width, height = map(float, sections["SCAN_RANGE"].split())
    x0, y0 = map(float, sections["SCAN_OFFSET"].split())
    assert not z.pos.is_grid and z.pos.labels == ("Y", "X")
    theta = np.deg2rad(30.0)
    u, v = -width / 2 + (columns - 1) * width / columns, -height / 2  # the last point of the bottom line
    expected = (y0 - u * np.sin(theta) + v * np.cos(theta), x0 + u * np.cos(theta) + v * np.sin(theta))
    np.testing.assert_allclose(z.pos.values[columns - 1], expected, rtol=1e-12)
    planes = np.frombuffer(raw, ">f4", offset=start, count=3 * rows * columns).reshape(-1, rows, columns)
    assert np.array_equal(np.asarray(z.data).reshape(rows, columns), planes[2][::-1], equal_nan=True)  # the top line was stored first
    assert ub.validate(ub.write(z, tmp_path / "turned.h5")).ok


def test_dat_point_spectrum(shared_data, same_units, tmp_path):
    path = shared_data / DAT
    text = path.read_text(encoding="latin-1")
    head, table = text.split("[DATA]")
    header = dict(line.split("\t")[:2] for line in head.splitlines() if "\t" in line)
    labels = table.strip().splitlines()[0].split("\t")
    values = np.loadtxt(table.strip().splitlines()[1:], delimiter="\t")
    assert registry.detect(path).name == "nanonis"
    datasets = ub.read(path)
    assert len(datasets) == len(labels) - 1
    expected_names = {"Current [bwd] (A)": "Current [bwd]", "Current (A) [filt]": "Current [filt]", "Current (A) [bwd] [filt]": "Current [bwd] [filt]", "Vert. Deflection (V)": "Vert. Deflection"}
    by_name = {dataset.quantity: (column, dataset) for column, dataset in enumerate(datasets, start=1)}
    for label, name in expected_names.items():
        column, dataset = by_name[name]
        assert labels[column] == label and same_units(dataset.units, label[label.index("(") + 1 : label.index(")")])
        assert np.array_equal(dataset.to_ndarray(squeeze=True), values[:, column])
    (sweep,) = datasets[0].spec.dims
    assert (sweep.name, sweep.units) == ("Bias calc", "V") and np.array_equal(sweep.values, values[:, 0])
    x, y = datasets[0].pos.dims
    assert (x.values[0], y.values[0]) == (float(header["X (m)"]), float(header["Y (m)"]))
    out = ub.write(datasets, tmp_path / "spectrum.h5")
    assert ub.validate(out).ok and len(ub.read(out)) == len(labels) - 1
    need("xarray")
    array = ub.converters.netcdf.to_xarray(datasets[0])
    assert array.dims == ("X", "Y", "Bias_calc")  # positions navigate, the sweep is the signal (netCDF names have no spaces)


def test_3ds_grid_over_true_tip_positions(shared_data, same_units, tmp_path, usid):
    path = shared_data / GRID
    raw = path.read_bytes()
    end = raw.index(b":HEADER_END:")
    header = dict(line.split("=", 1) for line in raw[:end].decode("latin-1").splitlines() if "=" in line)
    columns, rows = map(int, header["Grid dim"].strip('"').split(" x "))
    points, parameters = int(header["Points"]), int(header["# Parameters (4 byte)"])
    names = header["Fixed parameters"].strip('"').split(";") + header["Experiment parameters"].strip('"').split(";")
    channels = header["Channels"].strip('"').split(";")
    block = np.frombuffer(raw, ">f4", offset=end + len(":HEADER_END:\r\n")).reshape(rows * columns, parameters + len(channels) * points)
    params = {name: block[:, index] for index, name in enumerate(names)}
    datasets = ub.read(path)
    assert [(dataset.quantity, dataset.units) for dataset in datasets] == [(channel.split(" (")[0], channel.split("(")[1].rstrip(")")) for channel in channels]
    first = datasets[0]
    assert not first.pos.is_grid and first.pos.labels == ("Y", "X")
    np.testing.assert_array_equal(first.pos.values, np.column_stack([params["Y (m)"], params["X (m)"]]).astype(np.float64))
    steps = np.hypot(*np.diff(first.pos.values[:2], axis=0)[0])
    assert steps == pytest.approx(5e-9 / columns, rel=1e-4)  # a 5 nm grid of 30 points per line, turned 45°
    (sweep,) = first.spec.dims
    assert same_units(sweep.units, "V") and np.allclose(sweep.values, np.linspace(params["Sweep Start"][0], params["Sweep End"][0], points))
    for number, dataset in enumerate(datasets):
        assert np.array_equal(np.asarray(dataset.data), block[:, parameters + number * points : parameters + (number + 1) * points])
    assert np.array_equal(first.metadata["nanonis"]["point_parameters"]["Z (m)"], params["Z (m)"].astype(np.float64))
    out = ub.write(datasets, tmp_path / "grid.h5")
    assert ub.validate(out).ok
    with h5py.File(out, "r") as file:
        assert all(usid.hdf_utils.check_if_main(main) for main in usid.hdf_utils.get_all_main(file))
    array = ub.converters.netcdf.to_xarray(ub.read(out)[0])
    assert array.dims == ("position", "Bias")


def test_spec_and_column_text_stay_what_they_are(shared_data):
    assert registry.detect(shared_data / "spec/EXAFS_Cu.dat").name == "spec"


@pytest.mark.parametrize("name", [SXM, DAT, GRID])
@pytest.mark.parametrize("damage", ["truncated", "header lies", "garbage"])
def test_damaged_files_are_one_clean_error(shared_data, tmp_path, name, damage):
    raw = (shared_data / name).read_bytes()
    lies = {SXM: (b"       128       128", b"     99128       128"), DAT: (b"[DATA]", b"[DATA]\nnot numbers\t1\n"), GRID: (b"Points=200", b"Points=999999")}[name]
    damaged = {
        "truncated": raw[: len(raw) // 2] if name != DAT else raw[:40],
        "header lies": raw.replace(*lies),
        "garbage": raw[:20] + np.random.default_rng(4).bytes(2000),
    }[damage]
    path = tmp_path / f"damaged{(shared_data / name).suffix}"
    assert_read_fails_cleanly(path, damaged)


def test_turned_grid_as_its_frame_for_hyperspy(shared_data):
    """-r positions=frame: the turned .3ds grid as its own 30 x 30 grid about its centre (the angle in
    metadata), which HyperSpy navigates; turned by the angle, the frame gives the stored tip positions."""
    hs = need("hyperspy.api")
    path = shared_data / GRID
    tip = ub.read(path)[0]
    frame = ub.read(path, positions="frame")[0]
    assert frame.pos.is_grid and [dim.size for dim in frame.pos.dims] == [30, 30]
    angle = np.deg2rad(frame.metadata["nanonis"]["frame_angle_deg"])
    (y, x) = frame.pos.dims
    centre_y, centre_x = y.values.mean() + y.scale / 2, x.values.mean() + x.scale / 2
    u, v = x.values[0] - centre_x, y.values[0] - centre_y
    turned = (centre_y - u * np.sin(angle) + v * np.cos(angle), centre_x + u * np.cos(angle) + v * np.sin(angle))
    np.testing.assert_allclose(turned, tip.pos.values[0], rtol=0, atol=0.1 * x.scale)  # the stored tip positions are measured: within a tenth of a pixel
    signal = ub.converters.hyperspy.to_hyperspy(frame)
    assert signal.axes_manager.navigation_shape == (30, 30) and signal.axes_manager.signal_axes[0].name == "Bias"
    with pytest.raises(UsidBridgeError, match="positions"):
        ub.read(path, positions="rotated")
