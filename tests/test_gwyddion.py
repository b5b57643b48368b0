"""Gwyddion: .gwy against its data fields (gwyfile, the format's library) and against pycroscopy's
translations of the same measurement; .gsf against its header parsed here; volumes; Gwyddion 1;
damaged files."""

import h5py
import numpy as np
import pytest

import usidbridge as ub
from usidbridge import registry
from usidbridge.errors import UsidBridgeError

from conftest import assert_read_fails_cleanly, need

PFM = "spm/gwyddion_pfm.gwy"
GSF = "spm/gwyddion_chip.gsf"
PYCROSCOPY_GWY = "pycroscopy/SingFreqPFM_0003.gwy"
PYCROSCOPY_TRANSLATION = "pycroscopy/SingFreqPFM_0003_gwyddion_translator.h5"
IGOR_TRANSLATION = "usid/SingFreqPFM_0003.h5"  # pycroscopy's IgorIBW translation of the same scan


@pytest.fixture(scope="module")
def gwyfile():
    return need("gwyfile")


def test_every_data_field_with_its_size_offsets_and_units(shared_data, gwyfile, tmp_path, usid):
    path = shared_data / PFM
    assert registry.detect(path).name == "gwyddion"
    container = gwyfile.load(str(path))
    datasets = ub.read(path)
    assert [dataset.quantity for dataset in datasets] == [container[f"/{number}/data/title"] for number in range(4)]
    for number, dataset in enumerate(datasets):
        field = container[f"/{number}/data"]
        (y, x) = dataset.pos.dims
        assert dataset.units == field["si_unit_z"]["unitstr"] and x.units == y.units == field["si_unit_xy"]["unitstr"]
        step = field["xreal"] / field["xres"]  # Gwyddion's pixel size
        np.testing.assert_allclose(x.values, field.get("xoff", 0.0) + step * np.arange(field["xres"]), rtol=1e-12)
        np.testing.assert_allclose(y.values, field.get("yoff", 0.0) + field["yreal"] / field["yres"] * np.arange(field["yres"]), rtol=1e-12)
        assert np.array_equal(dataset.to_ndarray(squeeze=True), field["data"].reshape(field["yres"], field["xres"]))
        assert dataset.metadata["gwyddion"]["meta"]["ScanSize"] == "1e-05"
    out = ub.write(datasets, tmp_path / "pfm.h5")
    assert ub.validate(out).ok
    with h5py.File(out, "r") as file:
        assert all(usid.hdf_utils.check_if_main(main) for main in usid.hdf_utils.get_all_main(file))


def test_the_pair_pycroscopy_translated(shared_data, usid):
    """pycroscopy's GwyddionTranslator made the reference h5USID of this .gwy: the same channels,
    quantities, units and numbers. Its positions used linspace(0, xreal, xres), a pixel size of
    xreal / (xres - 1); Gwyddion's is xreal / xres, which is what pycroscopy's IgorIBW translation of
    the same scan gives (5 µm over 128 pixels: 39.37 nm), so that is the reference for positions."""
    ours = ub.read(shared_data / PYCROSCOPY_GWY)
    gwyddion_translation, igor_translation = ub.read(shared_data / PYCROSCOPY_TRANSLATION), ub.read(shared_data / IGOR_TRANSLATION)
    assert [(d.quantity, d.units) for d in ours] == [(d.quantity, d.units) for d in gwyddion_translation]
    for mine, theirs, igor in zip(ours, gwyddion_translation, igor_translation):
        assert np.array_equal(mine.to_ndarray(squeeze=True), theirs.to_ndarray(squeeze=True))
        for dim in ("X", "Y"):
            our_dim, their_dim, igor_dim = (next(d for d in dataset.pos.dims if d.name == dim) for dataset in (mine, theirs, igor))
            np.testing.assert_allclose(our_dim.values, igor_dim.values, rtol=1e-6, atol=1e-15)  # float32 in the file
            np.testing.assert_allclose(our_dim.values * our_dim.size / (our_dim.size - 1), their_dim.values, rtol=1e-6, atol=1e-15)


def test_gsf_against_its_header(shared_data, tmp_path):
    path = shared_data / GSF
    raw = path.read_bytes()
    end = raw.index(b"\x00")
    header = dict(line.split(" = ", 1) for line in raw[:end].decode().splitlines()[1:])
    xres, yres = int(header["XRes"]), int(header["YRes"])
    start = end + (4 - end % 4)
    values = np.frombuffer(raw, "<f4", count=xres * yres, offset=start).reshape(yres, xres)
    (dataset,) = ub.read(path)
    assert (dataset.quantity, dataset.units) == (header["Title"], header["ZUnits"])
    (y, x) = dataset.pos.dims
    np.testing.assert_allclose(x.values, float(header["XReal"]) / xres * np.arange(xres), rtol=1e-12)
    assert x.units == header["XYUnits"] and y.size == yres
    assert np.array_equal(dataset.to_ndarray(squeeze=True), values)
    assert ub.validate(ub.write(dataset, tmp_path / "chip.h5")).ok


def test_volumes_and_channels_without_units(gwyfile, tmp_path):
    """A .gwy volume (GwyBrick, planes of z) is a spectrum per pixel; a field with an empty unit is kept."""
    from gwyfile.objects import GwyContainer, GwyDataField, GwyObject, GwySIUnit

    cube = np.random.default_rng(5).normal(size=(5, 3, 4))  # Gwyddion's (z, y, x)
    container = GwyContainer()
    container["/brick/0"] = GwyObject("GwyBrick", {
        "xres": 4, "yres": 3, "zres": 5, "xreal": 4e-9, "yreal": 3e-9, "zreal": 1.0, "xoff": 1e-9, "yoff": 0.0, "zoff": -0.5,
        "si_unit_x": GwySIUnit(unitstr="m"), "si_unit_y": GwySIUnit(unitstr="m"), "si_unit_z": GwySIUnit(unitstr="V"), "si_unit_w": GwySIUnit(unitstr="A"),
        "data": cube.ravel(),
    })
    container["/brick/0/title"] = "CITS"
    container["/0/data"] = GwyDataField(np.ones((3, 4)), xreal=4e-9, yreal=3e-9, si_unit_xy=GwySIUnit(unitstr="m"), si_unit_z=GwySIUnit(unitstr=""))
    container["/0/data/title"] = "Count"
    container.tofile(str(tmp_path / "volume.gwy"))
    count, cits = ub.read(tmp_path / "volume.gwy")
    assert (count.quantity, count.units) == ("Count", "")
    (bias,) = cits.spec.dims
    assert (cits.units, bias.name, bias.units) == ("A", "Z", "V") and np.allclose(bias.values, -0.5 + 0.2 * np.arange(5))
    assert np.array_equal(cits.to_ndarray(), np.moveaxis(cube, 0, -1))
    assert np.allclose(cits.pos.dims[1].values, 1e-9 + 1e-9 * np.arange(4))


def test_gwyddion_1_is_refused_with_the_way_out(tmp_path):
    path = tmp_path / "old.gwy"
    path.write_bytes(b"GWYO" + bytes(200))
    with pytest.raises(UsidBridgeError, match="Gwyddion 1 .*save it again"):
        ub.read(path)


@pytest.mark.parametrize("name", [PFM, GSF])
@pytest.mark.parametrize("damage", ["truncated", "zeroed tail", "garbage"])
def test_damaged_files_are_one_clean_error(shared_data, tmp_path, name, damage):
    raw = (shared_data / name).read_bytes()
    damaged = {
        "truncated": raw[: len(raw) // 3],
        "zeroed tail": raw[:30] + bytes(len(raw) - 30),  # from inside the header
        "garbage": raw[:30] + np.random.default_rng(2).bytes(3000),
    }[damage]
    path = tmp_path / f"damaged{(shared_data / name).suffix}"
    assert_read_fails_cleanly(path, damaged)
