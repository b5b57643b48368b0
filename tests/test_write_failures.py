"""Writes the system refuses (a full disk, a file-size limit): one WriteError naming the output file
and the reason, nothing left behind, no crash of a C library, for every writer."""

import os
import subprocess
import sys

import numpy as np
import pytest

import usidbridge as ub
from usidbridge.errors import WriteError

LIMITED = """
import resource, signal, sys
import numpy as np
import usidbridge as ub
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk with ENOSPC
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
data = np.random.default_rng(0).random((64, 64, 256)).astype(np.float32)  # 4 MiB that does not compress
dataset = ub.Dataset.from_ndarray(data, [ub.Dimension("Y", "m", 64), ub.Dimension("X", "m", 64)], [ub.Dimension("V", "V", 256)])
try:
    ub.write(dataset, sys.argv[1], **{options})
except ub.errors.WriteError as error:
    print(error)
"""

# Not .hspy, nor compressed HDF5: when a chunked dataset cannot be flushed, libhdf5 leaves objects
# behind that crash the process as they are freed (h5py issue 914), after the WriteError.
CASES = {  # output name, writer options
    "h5usid": ("map.h5", {}),
    "nexus": ("map.nxs", {}),
    "netcdf": ("map.nc", {}),
    "tiff": ("map.tif", {}),
    "edf": ("map.edf", {}),
    "spec": ("map.spec", {}),
}


@pytest.mark.parametrize("limit", [1 << 20, 3 << 20], ids=["1 MiB", "3 MiB"])
@pytest.mark.parametrize("format_name", list(CASES))
def test_a_refused_write_is_one_error_naming_the_file_and_leaves_nothing(tmp_path, format_name, limit):
    name, options = CASES[format_name]
    out = tmp_path / "out" / name
    out.parent.mkdir()
    script = LIMITED.format(limit=limit, options=options)
    result = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]  # no crash of libhdf5 or netCDF-C, no SIGBUS
    message = result.stdout.strip()
    assert message.startswith(f"{out}: cannot write the file: "), (message, result.stderr[-2000:])
    assert "File too large" in message or "HDF error" in message, message
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("name", ["stack.tif", "stack.edf"])
def test_stacks_filled_through_a_memory_map_have_their_disk_space_first(tmp_path, name):
    """A page of a sparse file written through a memory map on a full disk kills the process
    (SIGBUS); the TIFF and EDF writers reserve the file's blocks first, where a full disk is an error."""
    frames = np.arange(4 * 256 * 256, dtype=np.uint16).reshape(256, 256, 4)
    dataset = ub.Dataset.from_ndarray(frames, [ub.Dimension("Y", "m", 256), ub.Dimension("X", "m", 256)], [ub.Dimension("Frame", "", 4)])
    path = ub.write(dataset, tmp_path / name)
    stat = os.stat(path)
    assert stat.st_blocks * 512 >= stat.st_size  # no holes
    assert np.array_equal(ub.read(path)[0].to_ndarray(), frames)


def test_write_error_is_a_usidbridge_error():
    assert issubclass(WriteError, ub.errors.UsidBridgeError)


def test_the_reason_comes_from_the_system_or_the_disk(tmp_path, monkeypatch):
    """libhdf5 buries the system's reason in its text; netCDF-C gives none, so a full disk says so."""
    import collections
    import shutil

    from usidbridge.output import failed_write

    out = tmp_path / "out.nc"
    told = RuntimeError("Can't decrement id ref count (file write failed: time = now, errno = 28, error message = 'No space left on device', buf = 0x1)")
    for error, free, expected in [
        (told, 0, "No space left on device"),
        (RuntimeError("NetCDF: HDF error"), 0, "NetCDF: HDF error (its disk has 0 bytes free)"),
        (RuntimeError("NetCDF: HDF error"), 10 << 30, "NetCDF: HDF error"),
        (OSError(28, "No space left on device"), 0, "No space left on device"),
    ]:
        monkeypatch.setattr(shutil, "disk_usage", lambda _path, free=free: collections.namedtuple("usage", "total used free")(1, 1, free))
        with pytest.raises(WriteError) as raised:
            with failed_write(out):
                raise error
        assert str(raised.value) == f"{out}: cannot write the file: {expected}"
    with pytest.raises(NotImplementedError), failed_write(out):
        raise NotImplementedError("a bug, not a refused write")
