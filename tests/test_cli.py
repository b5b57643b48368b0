"""The command line, run as a real process: exit codes, one-line errors, JSON, no partial output."""

import json
import subprocess
import sys

import h5py

from conftest import fixture_files
from test_rules import broken_file
from usid_files import compliant_file


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "usidbridge", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def assert_one_line_error(result, *words):
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


def test_validate_compliant_broken_and_unreadable(tmp_path, shared_data):
    good = run("validate", compliant_file(tmp_path / "good.h5"))
    assert good.returncode == 0 and "USID-compliant" in good.stdout
    broken = run("validate", broken_file(tmp_path, "A09"))
    assert broken.returncode == 1 and "A09" in broken.stdout
    text = tmp_path / "notes.txt"
    text.write_text("temperature 300 K\n")
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes((shared_data / "usid" / "SingFreqPFM_0003.h5").read_bytes()[:50000])
    assert_one_line_error(run("validate", text), str(text), "not an HDF5 file")
    assert_one_line_error(run("validate", empty), str(empty), "empty")
    assert_one_line_error(run("validate", truncated), str(truncated), "truncated")


def test_validate_json_and_strict(tmp_path):
    path = broken_file(tmp_path, "B01")
    result = run("validate", path, "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["compliant"] and report["findings"][0]["rule"] == "B01"
    assert run("validate", path, "--strict").returncode == 1
    many = json.loads(run("validate", path, tmp_path / "missing.h5", "--json").stdout)
    assert many[1]["file"] == str(tmp_path / "missing.h5") and "No such file" in many[1]["error"]


def test_convert_info_and_formats(tmp_path, shared_data):
    out = tmp_path / "pfm.h5"
    result = run("convert", shared_data / "usid" / "SingFreqPFM_0003.h5", out, "--compression", "gzip")
    assert result.returncode == 0, result.stderr
    with h5py.File(out, "r") as file:
        assert file["Measurement_000/Channel_000/Raw_Data"].compression == "gzip"
    again = run("convert", shared_data / "usid" / "SingFreqPFM_0003.h5", out)
    assert_one_line_error(again, "exists", "--overwrite")
    assert run("convert", shared_data / "usid" / "SingFreqPFM_0003.h5", out, "--overwrite").returncode == 0
    info = json.loads(run("info", out, "--json").stdout)
    assert info["format"] == "h5usid" and len(info["datasets"]) == 4
    assert [dim["name"] for dim in info["datasets"][0]["position"]] == ["Y", "X"]
    assert "Channel_003" in run("info", out).stdout
    formats = json.loads(run("formats", "--json").stdout)
    assert any(row["name"] == "h5usid" and row["installed"] for row in formats)
    assert "h5usid" in run("formats").stdout


def test_failed_convert_leaves_nothing(tmp_path):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 300)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = run("convert", garbage, out_dir / "x.h5")
    assert_one_line_error(result, str(garbage))
    assert list(out_dir.iterdir()) == []


def test_debug_shows_the_traceback(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("x")
    result = run("--debug", "convert", text, tmp_path / "x.h5")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_demo_converts_validates_previews_exports_and_round_trips(tmp_path):
    result = run("demo", "--out", tmp_path / "demo")
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "demo"
    stems = sorted(path.stem for path in fixture_files())
    assert sorted(path.stem for path in out.glob("*.h5")) == stems and sorted(path.stem for path in out.glob("*.png")) == stems
    for stem in stems:
        exported = {path.suffix for path in (out / "exports" / stem).iterdir()}
        assert {".h5", ".nxs", ".nc", ".hspy"} <= exported
    assert "fidelity of" in result.stdout and "nexus" in result.stdout and "!" not in result.stdout


def test_command_line_manners(tmp_path):
    """--debug after the subcommand, -v says why, one message for a folder, preview refuses to overwrite."""
    from usid_files import compliant_file

    source = compliant_file(tmp_path / "good.h5")
    debug = run("convert", tmp_path / "missing.h5", tmp_path / "out.h5", "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "no such file" in debug.stderr
    verbose = run("convert", source, tmp_path / "out.nxs", "-v")
    assert verbose.returncode == 0
    assert "read as h5usid: its content matched" in verbose.stderr and "written as nexus: from the extension .nxs" in verbose.stderr
    folder = tmp_path / "a_folder"
    folder.mkdir()
    for arguments in (("convert", folder, tmp_path / "x.h5"), ("validate", folder), ("info", folder), ("preview", folder), ("roundtrip", folder)):
        assert_one_line_error(run(*arguments), str(folder), "is a folder, not a file")
    assert_one_line_error(run("convert", source, folder), str(folder), "is a folder, not a file")
    picture = tmp_path / "picture.png"
    assert run("preview", source, "-o", picture).returncode == 0
    assert_one_line_error(run("preview", source, "-o", picture), str(picture), "--overwrite")
    assert run("preview", source, "-o", picture, "--overwrite").returncode == 0


def test_bracketed_text_survives_every_command(tmp_path):
    """Names, units, paths and hints are data, never rich markup: `Energy [eV]`, `[raw]` and
    `usidbridge[netcdf]` arrive as written in every command's output (issue 23)."""
    import numpy as np

    import usidbridge as ub

    folder = tmp_path / "beam [time]"
    folder.mkdir()
    dataset = ub.Dataset.from_ndarray(np.arange(24.0).reshape(2, 3, 4), [ub.Dimension("Y [row]", "nm", 2), ub.Dimension("X", "nm", 3)],
                                      [ub.Dimension("Energy [eV]", "eV", [1.0, 2.0, 3.0, 4.0])], name="Spectra [raw]", quantity="Counts [b]", units="[per s]")
    path = ub.write(dataset, folder / "map [1].h5")
    info = run("info", path)
    assert info.returncode == 0, info.stderr
    for text in ("Energy [eV]", "Y [row]", "Counts [b]", "[per s]", "map [1].h5", "beam [time]"):
        assert text in info.stdout, (text, info.stdout)
    validate = run("validate", path)
    assert validate.returncode == 0 and "map [1].h5" in validate.stdout
    broken = run("validate", "--no-isolate", broken_file(folder, "A09"))
    assert "beam [time]" in broken.stdout
    roundtrip = run("roundtrip", path, "--via", "nexus")
    assert "Spectra [raw]" in roundtrip.stdout or "Counts [b]" in roundtrip.stdout, roundtrip.stdout
    converted = run("convert", path, folder / "out [2].nxs")
    assert converted.returncode == 0 and "out [2].nxs" in converted.stdout


def test_info_shows_the_dims_first_and_metadata_on_request(tmp_path, shared_data):
    """A DM spectrum image carries hundreds of metadata items: info shows the Main dataset's dims
    first, folds the metadata groups to a count, and lists them with --metadata (issue 23)."""
    path = tmp_path / "si.h5"
    assert run("convert", shared_data / "rosettasciio/dm/EELS_spectrum_image.dm3", path).returncode == 0
    short, full = run("info", path), run("info", path, "--metadata")
    assert short.returncode == full.returncode == 0
    lines = short.stdout.splitlines()
    first_dim = next(number for number, line in enumerate(lines) if "Energy loss" in line)
    metadata_lines = [number for number, line in enumerate(lines) if "/Metadata" in line]
    assert metadata_lines and first_dim < min(metadata_lines)
    assert "--metadata lists them" in short.stdout and len(short.stdout.splitlines()) < 60
    assert len(full.stdout.splitlines()) > len(lines) + 50 and "--metadata lists them" not in full.stdout


def test_short_format_names_and_read_only_outputs(tmp_path):
    """--to takes the names users type (tif, nc, h5, nxs, hspy); a read-only output says so and
    lists the writable formats (issue 23)."""
    from usid_files import compliant_file

    source = compliant_file(tmp_path / "good.h5")
    for short, suffix in (("tif", ".tif"), ("nc", ".nc"), ("nxs", ".nxs"), ("hspy", ".hspy"), ("h5", ".h5")):
        result = run("convert", source, tmp_path / f"out_{short}", "--to", short)
        assert result.returncode == 0, (short, result.stderr)
    assert_one_line_error(run("convert", source, tmp_path / "out.dm3"), ".dm3 files are read-only", "h5usid", "nexus")
    assert_one_line_error(run("convert", source, tmp_path / "out.x", "--to", "dm3"), "read-only", "write one of")


QUIET_FILES = ["rosettasciio/dm/EELS_spectrum.dm3", "rosettasciio/tia/16x16-spectrum_image-5x5x1024.emi", "spm/nanonis_sts_grid.3ds", "nexus/simple_signal.nxs", "usid/SingFreqPFM_0003.h5", "spec/EXAFS_Cu.dat", "tiff/test_loading_image_saved_with_imageJ_stack.tif"]


def test_no_library_speaks_on_standard_error_without_v(tmp_path, shared_data):
    """Every command of `--help`, on shared files whose libraries talk (HyperSpy's "signal_type 'EELS'
    not understood" in colour, RosettaSciIO's and FabIO's warnings): standard error holds only our
    own lines without -v, and no library's log line reaches standard output; with -v the libraries
    speak (issue 23)."""
    from usidbridge.cli import cli

    files = [shared_data / name for name in QUIET_FILES]
    folder = tmp_path / "inputs"
    folder.mkdir()
    for path in files:
        (folder / path.name).symlink_to(path)
    (folder / "16x16-spectrum_image-5x5x1024_1.ser").symlink_to(shared_data / "rosettasciio/tia/16x16-spectrum_image-5x5x1024_1.ser")  # the .emi's data
    runs = {"batch": run("batch", folder, "--to", "h5usid", "--out", tmp_path / "batch", "--report", tmp_path / "report.json"),
            "formats": run("formats"), "clean": run("clean", tmp_path), "demo": run("demo", "--out", tmp_path / "demo")}
    for path in files:
        runs[f"convert {path.name}"] = run("convert", path, tmp_path / f"{path.stem}.hspy")
        runs[f"info {path.name}"] = run("info", path)
    for path in files[:4]:
        runs[f"validate {path.name}"] = run("validate", path)
        runs[f"preview {path.name}"] = run("preview", path, "-o", tmp_path / f"{path.stem}.png")
    runs["roundtrip"] = run("roundtrip", files[0], "--via", "all")
    assert {name.split()[0] for name in runs} == set(cli.commands), "every command is run here"
    for name, result in runs.items():
        foreign = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("usidbridge:")]
        assert not foreign and "\x1b[" not in result.stderr + result.stdout and "WARNING |" not in result.stdout, (name, result.stderr, result.stdout)
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["converted"] == len(files) + 1  # the .ser reads on its own too
    verbose = run("-v", "convert", files[0], tmp_path / "verbose.hspy")
    assert verbose.returncode == 0 and "signal_type='EELS'" in verbose.stdout + verbose.stderr  # HyperSpy's handler writes to standard output
