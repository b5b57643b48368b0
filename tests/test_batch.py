"""Batch conversions on a real dask LocalCluster (worker processes on loopback), progress reporting."""

import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

import usidbridge as ub
from usidbridge import progress
from usidbridge.batch import batch, targets

from conftest import FIXTURES, fixture_files, need


@pytest.fixture(scope="module")
def distributed():
    return need("distributed")


def inputs_with_a_bad_one(tmp_path):
    folder = tmp_path / "inputs"
    folder.mkdir()
    for path in fixture_files():
        shutil.copy(path, folder / path.name)
    (folder / "broken.spec").write_text("#S 1 ascan x 0 1 2 1\n#L x  I\n0 1\n0.5 oops\n")
    return folder


def test_batch_command_on_two_local_workers(tmp_path):
    folder = inputs_with_a_bad_one(tmp_path)
    out, report = tmp_path / "out", tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "usidbridge", "batch", str(folder), "--to", "h5usid", "--out", str(out), "--workers", "2", "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1  # one input failed
    assert result.stdout.strip() == f"converted 7 file(s) to {out}, 0 skipped, 1 failed"  # no progress bar when not a terminal
    assert result.stderr.strip().splitlines() == [f"usidbridge: failed: {folder / 'broken.spec'}: line 4: a data line that is not numbers: '0.5 oops'"]
    assert "Traceback" not in result.stderr
    for path in out.iterdir():
        assert ub.validate(path).ok
    assert len(list(out.iterdir())) == 7
    summary = json.loads(report.read_text())
    assert all(entry["seconds"] > 0 for entry in summary["converted"] + summary["failed"])
    assert summary["summary"]["converted"] == 7 and summary["summary"]["failed"] == 1 and summary["summary"]["files_per_second"] > 0


def test_batch_on_an_existing_scheduler(tmp_path, distributed):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        seen = []
        result = batch([FIXTURES / "pyusid_iv_map.h5", FIXTURES / "demo_scans.spec"], "netcdf", tmp_path / "nc", scheduler=cluster.scheduler_address, on_done=lambda done, total: seen.append((done, total)))
    assert not result.failed and len(result.converted) == 2 and seen[-1] == (2, 2)
    assert {ub.read(output)[0].quantity for _, output in result.converted} >= {"Current"}


def test_output_names_keep_inputs_with_the_same_stem_apart(tmp_path):
    names = [path.name for path in targets([tmp_path / "a.spec", tmp_path / "a.edf", tmp_path / "b.tif"], "h5usid", tmp_path)]
    assert names == ["a.spec.h5", "a.edf.h5", "b.h5"]


def test_progress_is_reported_per_block(tmp_path):
    seen = []
    dataset = ub.Dataset.from_ndarray(np.zeros((4000, 3000)), [ub.Dimension("P", "", 4000)], [ub.Dimension("E", "eV", 3000)])
    with progress.reporting(lambda done, total: seen.append((done, total))):
        ub.write(dataset, tmp_path / "p.h5")
    assert len(seen) >= 2 and seen[-1][0] == seen[-1][1] == dataset.data.nbytes


@pytest.mark.parametrize(("format", "suffix"), [("h5usid", ".h5"), ("nexus", ".nxs"), ("netcdf", ".nc"), ("hyperspy", ".hspy"), ("tiff", ".tif"), ("edf", ".edf"), ("spec", ".spec")])
def test_every_writer_reports_a_percentage(tmp_path, format, suffix):
    """From lazy (h5py) data, as `convert` streams it: every writer reports progress that reaches its total."""
    if format == "spec":  # SPEC: counters over one scanned motor
        dataset = ub.Dataset.from_ndarray(np.arange(4096, dtype=np.float32), [ub.Dimension("X", "m", 4096)])
    else:
        dataset = ub.Dataset.from_ndarray(np.arange(4096 * 3, dtype=np.float32).reshape(64, 64, 3), [ub.Dimension("Y", "m", 64), ub.Dimension("X", "m", 64)], [ub.Dimension("E", "eV", 3)])
    source = ub.write(dataset, tmp_path / "source.h5")
    seen = []
    with progress.reporting(lambda done, total: seen.append((done, total))):
        ub.convert(source, tmp_path / f"out{suffix}", to=format)
    assert seen and seen[-1][0] == seen[-1][1] > 0
    assert all(0 <= done <= total for done, total in seen)


def run_on_a_terminal(arguments, cwd):
    """Run the command with a pseudo-terminal as its output; return what the terminal received."""
    import os
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "usidbridge", *arguments], stdout=follower, stderr=follower, cwd=cwd, env={**os.environ, "TERM": "xterm", "COLUMNS": "100"})
    os.close(follower)
    received = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        received += chunk
    process.wait(timeout=120)
    os.close(leader)
    return process.returncode, received.decode(errors="replace")


def test_progress_bar_on_a_terminal_only(tmp_path):
    source = tmp_path / "big.h5"
    ub.write(ub.Dataset.from_ndarray(np.zeros((6000, 4000)), [ub.Dimension("P", "", 6000)], [ub.Dimension("E", "eV", 4000)]), source)
    code, shown = run_on_a_terminal(["convert", str(source), str(tmp_path / "big.nxs")], tmp_path)
    assert code == 0 and "converting big.h5" in shown and "wrote" in shown
    code, quiet = run_on_a_terminal(["convert", str(source), str(tmp_path / "quiet.nxs"), "--quiet"], tmp_path)
    assert code == 0 and "converting" not in quiet and "wrote" in quiet


def test_batch_over_a_nested_tree_skips_non_data_and_resumes(tmp_path, distributed):
    """Sub-folders are walked and mirrored; README, pictures and logs are skipped; --skip-existing resumes; --report is JSON."""
    import json

    tree = tmp_path / "beamtime"
    (tree / "day1" / "scans").mkdir(parents=True)
    (tree / "day2").mkdir()
    shutil.copy(FIXTURES / "demo_scans.spec", tree / "day1" / "scans" / "run.spec")
    shutil.copy(FIXTURES / "pyusid_iv_map.h5", tree / "day1" / "map.h5")
    shutil.copy(FIXTURES / "detector_frames.edf", tree / "day2" / "frames.edf")
    (tree / "README.md").write_text("# Beamtime notes\nSample: Cu foil.\n")
    (tree / "day2" / "log.txt").write_text("12:00 started\n12:05 beam lost\n")
    (tree / "day2" / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    out, report = tmp_path / "out", tmp_path / "report.json"
    command = [sys.executable, "-m", "usidbridge", "batch", str(tree), "--to", "h5usid", "--out", str(out), "--workers", "1", "--report", str(report)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1] == f"converted 3 file(s) to {out}, 3 skipped, 0 failed"
    assert sorted(str(path.relative_to(out)) for path in out.rglob("*.h5")) == ["day1/map.h5", "day1/scans/run.h5", "day2/frames.h5"]
    from pathlib import Path

    summary = json.loads(report.read_text())
    assert {Path(entry["source"]).name for entry in summary["skipped"]} == {"README.md", "log.txt", "photo.png"}
    (out / "day2" / "frames.h5").unlink()
    again = subprocess.run(command + ["--skip-existing"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == f"converted 1 file(s) to {out}, 5 skipped, 0 failed"
    assert ub.validate(out / "day2" / "frames.h5").ok


def test_batch_over_a_folder_of_scanning_probe_files(shared_data, tmp_path, distributed):
    """An AFM / STM session folder (Igor, Nanonis, Gwyddion, Nanoscope, NT-MDT, Anasys, NSID and
    pycroscopy's own files) converts file by file to compliant h5USID."""
    folder = tmp_path / "session"
    folder.mkdir()
    for path in [*(shared_data / "spm").iterdir(), *(shared_data / "pycroscopy").iterdir()]:
        shutil.copy(path, folder / path.name)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "usidbridge", "batch", str(folder), "--to", "h5usid", "--out", str(out), "--workers", "2"], capture_output=True, text=True, timeout=600)
    assert result.stdout.strip() == f"converted {len(list(folder.iterdir()))} file(s) to {out}, 0 skipped, 0 failed", result.stderr
    for path in out.iterdir():
        assert ub.validate(path).ok, path


def test_batch_passes_options_leaves_no_empty_folders_and_reports_each_file(tmp_path):
    """-r/-w/--compression reach every file; a file that fails in its own sub-folder leaves no
    empty folder behind; the report names each output's datasets and its USID verdict (issue 23)."""
    tree = tmp_path / "tree"
    (tree / "scans").mkdir(parents=True)
    (tree / "bad").mkdir()
    shutil.copy(FIXTURES / "demo_scans.spec", tree / "scans" / "demo_scans.spec")
    (tree / "bad" / "broken.spec").write_text("#S 1 ascan x 0 1 2 1\n#L x  I\n0 1\n0.5 oops\n")
    out, report = tmp_path / "out", tmp_path / "report.json"
    result = subprocess.run([sys.executable, "-m", "usidbridge", "batch", str(tree), "--to", "h5usid", "--out", str(out), "--report", str(report),
                             "-r", "scanned=spectroscopic", "--compression", "gzip"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "broken.spec" in result.stderr
    assert not (out / "bad").exists()  # the failed file's mirrored folder is gone
    written = out / "scans" / "demo_scans.h5"
    datasets = ub.read(written)
    assert all(dataset.pos.size == 1 for dataset in datasets)  # scanned=spectroscopic reached the reader
    with h5py.File(written, "r") as file:
        mains = []
        file.visititems(lambda name, item: mains.append(item) if isinstance(item, h5py.Dataset) and "quantity" in item.attrs else None)
        assert mains and all(main.compression == "gzip" for main in mains)  # --compression reached the writer
    (entry,) = json.loads(report.read_text())["converted"]
    assert entry["datasets"] == [dataset.name for dataset in datasets] and entry["usid_compliant"] is True
