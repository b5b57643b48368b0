"""The command line, run as a real process: exit codes, one-line errors, JSON, no partial output."""

import json
import subprocess
import sys

import h5py

from conftest import FIXTURES
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
    stems = sorted(path.stem for path in FIXTURES.iterdir() if path.suffix not in (".py", ".md"))
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
