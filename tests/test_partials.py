"""No debris after a kill: a conversion killed with SIGKILL leaves a partial that the next run, or `clean`, removes."""

import os
import signal
import subprocess
import sys
import time

from conftest import need
from test_cli import run

SLOW_WRITER = """
import sys, time
import dask, dask.array, numpy as np
import usidbridge as ub

def slow_block():
    time.sleep(60)
    return np.zeros((1000, 10))

data = dask.array.concatenate([dask.array.from_array(np.zeros((1000, 10)), chunks=(1000, 10)),
                               dask.array.from_delayed(dask.delayed(slow_block)(), (1000, 10), float)])
dataset = ub.Dataset.from_ndarray(data, [ub.Dimension("X", "m", 2000)], [ub.Dimension("E", "eV", 10)])
ub.write(dataset, sys.argv[1])
"""


def partials(folder):
    return sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".partial"))


def test_sigkill_leaves_a_partial_that_the_next_run_removes(tmp_path):
    need("dask")
    target = tmp_path / "out.h5"
    child = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target)])
    deadline = time.monotonic() + 60
    while not partials(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    (left,) = partials(tmp_path)
    assert left.startswith(f".out.h5.{child.pid}.") and not target.exists()
    done = run("convert", tmp_path.parent / "nothing", target)  # fails: no input; leaves the partial alone
    assert done.returncode == 2 and partials(tmp_path) == [left]
    source = tmp_path / "in.h5"
    from usid_files import compliant_file

    compliant_file(source)
    assert run("convert", source, target).returncode == 0
    assert partials(tmp_path) == [] and target.exists()


def test_clean_removes_only_partials_of_dead_processes(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".scan.h5.{dead.stdout.strip()}.abc123.partial"
    live = tmp_path / f".scan.h5.{os.getpid()}.def456.partial"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "scan.h5").write_bytes(b"half")
    result = run("clean", tmp_path)
    assert result.returncode == 0 and "1 partial output(s) removed" in result.stdout
    assert not stale.exists() and live.exists()
