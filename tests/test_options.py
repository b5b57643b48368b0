"""No option is silently ignored: declared reader/writer options, --compression for every HDF5 writer, `formats`."""

import json

import h5py
import pytest

import usidbridge as ub
from usidbridge.errors import UnknownOptionError

from conftest import FIXTURES, need
from test_cli import assert_one_line_error, run

IV_MAP = FIXTURES / "pyusid_iv_map.h5"


def test_unknown_reader_option_names_the_key_and_the_valid_ones(tmp_path):
    result = run("convert", FIXTURES / "detector_frames.edf", tmp_path / "out.h5", "-r", "frame=position")
    assert_one_line_error(result, "'frame'", "frames", "series")
    assert not (tmp_path / "out.h5").exists()
    with pytest.raises(UnknownOptionError, match="its options: none"):
        ub.read(IV_MAP, colour="red")


def test_unknown_writer_option_and_inapplicable_compression(tmp_path):
    assert_one_line_error(run("convert", IV_MAP, tmp_path / "out.nxs", "-w", "duel=true"), "'duel'", "dual", "compression")
    assert_one_line_error(run("convert", FIXTURES / "imagej_stack.tif", tmp_path / "out.tif", "--compression", "gzip"), "'compression'", "tiff writer", "none")
    assert_one_line_error(run("convert", IV_MAP, tmp_path / "out.nc", "--compression", "lzf"), "gzip")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("suffix", "compression", "expected"), [(".h5", "lzf", "lzf"), (".nxs", "gzip", "gzip"), (".nc", "gzip", "gzip"), (".hspy", "lzf", "lzf"), (".hspy", "none", None)])
def test_compression_reaches_every_hdf5_writer(tmp_path, suffix, compression, expected):
    if suffix == ".hspy":
        need("hyperspy")
    if suffix == ".nc":
        need("xarray")
    (dataset,) = ub.read(IV_MAP)
    out = ub.write(dataset, tmp_path / f"out{suffix}", compression=compression)
    filters = []
    with h5py.File(out, "r") as file:
        file.visititems(lambda name, obj: filters.append(obj.compression) if isinstance(obj, h5py.Dataset) and obj.size == dataset.data.size else None)
    assert filters and set(filters) == {expected}
    (back,) = ub.read(out)
    assert back.to_ndarray().tobytes() == dataset.to_ndarray().tobytes()


def test_formats_lists_every_option_with_help():
    rows = {row["name"]: row for row in json.loads(run("formats", "--json").stdout)}
    assert rows["edf"]["read_options"].keys() == {"frames", "series"}
    assert rows["nexus"]["write_options"].keys() == {"dual", "compression"}
    assert all(text and "\n" not in text for row in rows.values() for side in ("read_options", "write_options") for text in row[side].values())
    table = run("formats")
    assert table.returncode == 0
    assert "series" in table.stdout and "KEY=VALUE" in table.stdout
