"""Isolation: a crash or hang in the reading process becomes one clear error naming the file."""

import ctypes
import os
import time

import pytest

import usidbridge as ub
from usidbridge.errors import IsolatedFailureError, NotUSIDError
from usidbridge.isolation import isolated

from test_cli import run
from usid_files import compliant_file


def test_results_and_errors_cross_the_process_boundary(tmp_path):
    path = compliant_file(tmp_path / "good.h5")
    report = isolated(ub.validate, path, path=path)
    assert report.ok and report.to_dict() == ub.validate(path).to_dict()
    plain = tmp_path / "plain.h5"
    import h5py

    with h5py.File(plain, "w") as file:
        file["notes"] = "text only"
    with pytest.raises(NotUSIDError) as raised:
        isolated(ub.read, plain, "h5usid", path=plain)
    assert raised.value.path == str(plain)


@pytest.mark.parametrize(("function", "args", "words"), [(os.abort, (), "SIGABRT"), (ctypes.string_at, (0,), "SIGSEGV")])
def test_a_crash_in_the_child_is_an_error_naming_the_file(tmp_path, function, args, words):
    with pytest.raises(IsolatedFailureError, match=words) as raised:
        isolated(function, *args, path=tmp_path / "damaged.h5")
    assert str(tmp_path / "damaged.h5") in str(raised.value)


def test_a_hang_is_stopped_after_the_timeout(tmp_path):
    started = time.monotonic()
    with pytest.raises(IsolatedFailureError, match="no progress for 1 s"):
        isolated(time.sleep, 60, path=tmp_path / "loop.h5", timeout=1)
    assert time.monotonic() - started < 20


def test_command_line_isolates_validate_by_default_and_convert_on_request(tmp_path):
    path = compliant_file(tmp_path / "good.h5")
    assert run("validate", path).returncode == 0
    assert run("validate", "--no-isolate", path).returncode == 0
    result = run("convert", "--isolate", path, tmp_path / "out.nxs")
    assert result.returncode == 0, result.stderr
    assert ub.read(tmp_path / "out.nxs")[0].shape == (6, 4)


def test_a_worker_serves_many_calls_and_is_dead_after_a_crash(tmp_path):
    """batch's long-lived workers: one process for call after call (its imports paid once); a crash
    kills only that worker, which batch then replaces."""
    from usidbridge.isolation import Worker

    worker = Worker()
    try:
        first, second = (worker.call(os.getpid, path=tmp_path / "any.h5") for _ in range(2))
        assert first == second != os.getpid()
        path = compliant_file(tmp_path / "good.h5")
        assert worker.call(ub.validate, path, path=path).ok
        with pytest.raises(IsolatedFailureError, match="SIGABRT"):
            worker.call(os.abort, path=tmp_path / "damaged.h5")
        assert not worker.alive
    finally:
        worker.close()
    replacement = Worker()
    try:
        assert replacement.call(os.getpid, path=tmp_path / "any.h5") != first
    finally:
        replacement.close()


def test_a_read_that_libhdf5_loops_on_is_stopped_by_the_probe(tmp_path, monkeypatch):
    """A zeroed global heap (where HDF5 keeps variable-length strings) makes libhdf5 loop for ever
    on one attribute read (found by fuzzing, issue 22). ub.read walks an HDF5 file's structure in
    its probe child first: the loop there is one IsolatedFailureError naming the file, and this
    process goes on; isolate=False skips the probe."""
    import h5py
    import numpy as np

    from usidbridge import isolation

    path = tmp_path / "zeroed_heap.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("data", data=np.arange(10.0)).attrs["note"] = "a variable-length string"
    raw = bytearray(path.read_bytes())
    heap = raw.find(b"GCOL")  # a global heap collection: signature, version, reserved, its size, then its objects
    size = int.from_bytes(raw[heap + 8 : heap + 16], "little")
    raw[heap + 16 : heap + size] = bytes(size - 16)
    path.write_bytes(bytes(raw))
    monkeypatch.setattr(isolation, "PROBE_TIMEOUT", 3.0)
    started = time.monotonic()
    with pytest.raises(IsolatedFailureError, match="no progress for 3 s") as raised:
        ub.read(path)
    assert str(path) in str(raised.value) and time.monotonic() - started < 30
    good = compliant_file(tmp_path / "good.h5")
    assert ub.read(good)[0].shape == (6, 4)  # a new probe child took over


def test_a_forked_worker_serves_calls_contains_crashes_and_leaves_open_files_alone(tmp_path):
    """The probe child is a fork where that is safe (Linux, one thread): milliseconds to start
    instead of a new interpreter's imports. It must report as a spawned child does, and ending it
    (killed after a hang or a crash) must not touch an HDF5 file this process has open for writing."""
    import h5py
    import numpy as np

    from usidbridge.isolation import Worker

    open_file = h5py.File(tmp_path / "open.h5", "w")
    open_file["kept"] = np.arange(5.0)
    worker = Worker(fork=True)
    try:
        assert worker.call(os.getpid, path=tmp_path / "any.h5") != os.getpid()
        path = compliant_file(tmp_path / "good.h5")
        assert worker.call(ub.validate, path, path=path).ok
        with pytest.raises(NotUSIDError):
            worker.call(ub.read, tmp_path / "open.h5", "h5usid", path=tmp_path / "open.h5")
        with pytest.raises(IsolatedFailureError, match="no progress for 1 s"):
            worker.call(time.sleep, 60, path=tmp_path / "loop.h5", timeout=1)
        assert not worker.alive
    finally:
        worker.close()
    crashing = Worker(fork=True)
    try:
        with pytest.raises(IsolatedFailureError, match="SIGSEGV"):
            crashing.call(ctypes.string_at, 0, path=tmp_path / "damaged.h5")
    finally:
        crashing.close()
    open_file["added"] = np.ones(3)
    open_file.close()
    with h5py.File(tmp_path / "open.h5", "r") as file:
        assert file["kept"][()].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0] and file["added"].shape == (3,)


PROBE_IN_A_FRESH_PROCESS = """
import sys, time
import usidbridge as ub
from usidbridge import isolation
from usidbridge.errors import IsolatedFailureError
isolation.PROBE_TIMEOUT = 3.0
started = time.monotonic()
ub.read(sys.argv[1])
print(type(isolation._probe_worker.process).__name__, round(time.monotonic() - started, 3))
try:
    ub.read(sys.argv[2])
except IsolatedFailureError as error:
    print("contained:", error)
print(ub.read(sys.argv[1])[0].shape)
"""


def test_the_probe_of_a_single_threaded_process_is_a_fork(tmp_path):
    """What a command-line conversion of an HDF5 file gets: the probe forked, a loop in libhdf5 on a
    damaged file still one error naming it, and a new probe child for the next file."""
    import subprocess
    import sys

    good = compliant_file(tmp_path / "good.h5")
    damaged = tmp_path / "zeroed_heap.h5"
    import h5py
    import numpy as np

    with h5py.File(damaged, "w") as file:
        file.create_dataset("data", data=np.arange(10.0)).attrs["note"] = "a variable-length string"
    raw = bytearray(damaged.read_bytes())
    heap = raw.find(b"GCOL")
    size = int.from_bytes(raw[heap + 8 : heap + 16], "little")
    raw[heap + 16 : heap + size] = bytes(size - 16)
    damaged.write_bytes(bytes(raw))
    result = subprocess.run([sys.executable, "-c", PROBE_IN_A_FRESH_PROCESS, str(good), str(damaged)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    kind, _seconds = result.stdout.splitlines()[0].split()
    assert kind == "_ForkedChild"
    assert f"contained: {damaged}: timed out" in result.stdout and result.stdout.splitlines()[-1] == "(6, 4)"


def test_a_file_walked_before_and_unchanged_is_not_walked_again(tmp_path, monkeypatch):
    """Reading one file again and again pays the structure walk once; a changed file is walked again."""
    from usidbridge import isolation

    path = compliant_file(tmp_path / "again.h5")
    walks = []
    original = isolation.Worker.call

    def counting(self, function, *args, **kwargs):
        walks.append(function.__name__)
        return original(self, function, *args, **kwargs)

    monkeypatch.setattr(isolation.Worker, "call", counting)
    for _ in range(3):
        ub.read(path)
    assert walks.count("touch_structure") == 1
    time.sleep(0.01)
    compliant_file(path)  # rewritten: a new modification time
    ub.read(path)
    assert walks.count("touch_structure") == 2


@pytest.mark.parametrize("fork", [True, False])
def test_a_stuck_child_does_not_outlive_its_parent(fork):
    """A child stuck in a C library reads no more requests: when its parent is killed outright (a
    notebook kernel restarted, a batch worker replaced), it is killed too instead of spinning for ever."""
    import signal
    import subprocess
    import sys

    script = (
        "import time\nfrom usidbridge import isolation\n"
        f"worker = isolation.Worker(fork={fork})\nprint(worker.process.pid, flush=True)\n"
        "worker.call(time.sleep, 600, path='stuck', timeout=900)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(0.5)  # the child is in its call
    parent.send_signal(signal.SIGKILL)
    parent.wait()

    def running(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended; its reaper may be slow
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(child)


def _own_and_inner_pid() -> tuple[int, int]:
    return os.getpid(), isolated(os.getpid, path="inner")


def test_isolated_inside_an_isolation_child_runs_there():
    """A batch worker or ``convert --isolate`` is contained already: a read it isolates (a .bcf) runs
    in it, so that its data crosses one pipe, not two."""
    from usidbridge.isolation import Worker

    worker = Worker(fork=True)
    try:
        own, inner = worker.call(_own_and_inner_pid, path="outer")
    finally:
        worker.close()
    assert own == inner != os.getpid()
