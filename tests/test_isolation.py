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
