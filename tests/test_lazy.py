"""The hub's lazy readers: row ranges as hyperslabs, 2-D rows of N-D data, N-D views of rows."""

import numpy as np
import pytest

from usidbridge.errors import UnreadableFileError
from usidbridge.lazy import FileArray, FlatRows, NDRows, OrderedRows, _slabs, c_ordered, file_bytes, is_file_backed, leading_rows, mapped, read_ahead, read_in_parts, reads_hdf5


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (1, 1, 7), (4, 1, 3)])
def test_every_flat_range_is_a_few_hyperslabs_in_order(shape):
    array = np.arange(np.prod(shape)).reshape(shape)
    for start in range(array.size + 1):
        for stop in range(start, array.size + 1):
            pieces = _slabs(start, stop, shape)
            assert len(pieces) <= 2 * len(shape)
            read = np.concatenate([array[piece].ravel() for piece in pieces]) if pieces else np.array([], int)
            assert np.array_equal(read, np.arange(start, stop)), (start, stop)


def test_flat_rows_index_like_the_2d_array():
    array = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    rows, expected = FlatRows(array, 2), array.reshape(6, 20)
    for key in [np.s_[:], np.s_[1:5], np.s_[3], np.s_[-1], np.s_[::2], np.s_[4:1], np.s_[1:5, 3], np.s_[..., 2], np.s_[[0, 5]], np.s_[()]]:
        assert np.array_equal(rows[key], expected[key]), key
    assert np.array_equal(np.asarray(rows), expected) and rows.row_alignment == 3  # rows (2, 3): a slab is 3 rows
    assert np.array_equal(np.asarray(FlatRows(array, 0)), array.reshape(1, -1))
    with pytest.raises(IndexError):
        rows[6]


def test_nd_rows_index_like_the_nd_array():
    expected = np.arange(7 * 5 * 3 * 4).reshape(7, 5, 3, 4)
    view = NDRows(expected.reshape(105, 4), expected.shape, (7, 5, 3))
    for key in [np.s_[2], np.s_[1:4, ::2], np.s_[::-2, 1, :, 3], np.s_[5:2], np.s_[-1, -1, -1, -1], np.s_[..., 1:3], np.s_[()]]:
        assert np.array_equal(view[key], expected[key]), key


@pytest.mark.parametrize("shape", [(0, 3), (1, 1), (7, 3), (1000, 5), (3, 20000)])
def test_column_major_rows_are_read_in_c_order(shape):
    column_major = np.asfortranarray(np.arange(np.prod(shape), dtype=np.int32).reshape(shape))
    ordered = c_ordered(column_major)
    assert ordered.flags.c_contiguous and np.array_equal(ordered, column_major)
    rows = OrderedRows(column_major)
    for key in [np.s_[:], np.s_[1:5], np.s_[::3]] + ([np.s_[-1]] if shape[0] else []):
        assert np.array_equal(rows[key], column_major[key]), key
    c_order = np.ascontiguousarray(column_major)
    assert c_ordered(c_order) is c_order


def test_read_ahead_gives_every_block_in_order_and_raises_where_the_read_failed():
    data = np.arange(40).reshape(10, 4)
    ranges = [(0, 3), (3, 6), (6, 9), (9, 10)]
    blocks = list(read_ahead(lambda start, stop: data[start:stop], ranges))
    assert [(start, stop) for start, stop, _ in blocks] == ranges
    assert np.array_equal(np.concatenate([block for _, _, block in blocks]), data)
    assert [block.tolist() for _, _, block in read_ahead(lambda start, stop: data[start:stop], [(2, 4)])] == [data[2:4].tolist()]

    def failing(start, stop):
        if start == 6:
            raise UnreadableFileError("damaged chunk", "file.h5")
        return data[start:stop]

    written = []
    with pytest.raises(UnreadableFileError, match="damaged chunk"):
        for start, _stop, _block in read_ahead(failing, ranges):
            written.append(start)
    assert written == [0, 3]


def test_reads_hdf5_sees_through_the_hub_wrappers(tmp_path):
    import h5py

    with h5py.File(tmp_path / "data.h5", "w") as file:
        dataset = file.create_dataset("data", data=np.zeros((4, 3, 2)))
        assert reads_hdf5(dataset) and reads_hdf5(FileArray(dataset)) and reads_hdf5(FlatRows(dataset, 2))
    array = np.zeros((4, 3))
    assert not reads_hdf5(array) and not reads_hdf5(OrderedRows(array)) and not reads_hdf5(FlatRows(array.reshape(2, 2, 3), 2))
    assert list(read_ahead(lambda start, stop: array[start:stop], [(0, 2), (2, 4)], threaded=False))[1][:2] == (2, 4)


def _mapped_flags(path) -> tuple[bool, np.ndarray, np.ndarray]:
    """Whether dask's chunks of the lazily read Main dataset are views of the file's pages, its
    computed N-D data, and the data read eagerly."""
    import usidbridge as ub

    (lazy,) = ub.read(path, lazy=True)
    nd = lazy.lazy_nd(map_file=True)
    flags = nd.map_blocks(lambda block: np.full(block.shape, is_file_backed(block)), dtype=bool)  # no dropped axes: those concatenate
    return bool(flags.all().compute()), nd.compute(), ub.read(path)[0].to_ndarray()


@pytest.mark.parametrize("dtype", ["<u2", ">i4", "<f4", ">f8", "<c8", ">c16"])
def test_dask_chunks_of_contiguous_data_are_views_of_the_file(tmp_path, dtype):
    import usidbridge as ub

    array = (np.arange(6 * 5 * 7) % 251).astype(dtype).reshape(6, 5, 7)
    dims = [ub.Dimension("Y", "m", 6), ub.Dimension("X", "m", 5)], [ub.Dimension("Bias", "V", 7)]
    path = ub.write(ub.Dataset.from_ndarray(array, *dims, quantity="Q", units="A"), tmp_path / "map.h5", compression="none")
    file_backed, computed, eager = _mapped_flags(path)
    assert file_backed and computed.dtype == eager.dtype == np.dtype(dtype)
    assert np.array_equal(computed, array) and np.array_equal(eager, array)
    assert not is_file_backed(computed)  # compute copies out of the file's pages: the result is the caller's


def test_chunked_compressed_compound_and_empty_data_are_read_through_hdf5(tmp_path):
    import h5py

    import usidbridge as ub

    array = np.arange(4 * 3 * 5, dtype=np.float32).reshape(4, 3, 5)
    dims = [ub.Dimension("Y", "m", 4), ub.Dimension("X", "m", 3)], [ub.Dimension("Bias", "V", 5)]
    path = ub.write(ub.Dataset.from_ndarray(array, *dims, quantity="Q", units="A"), tmp_path / "map.h5", compression="gzip")
    file_backed, computed, _eager = _mapped_flags(path)
    assert not file_backed and np.array_equal(computed, array)
    with h5py.File(tmp_path / "block.h5", "w", userblock_size=512) as file:
        file.create_dataset("data", data=array)
        assert mapped(file["data"]) is None  # open for writing: its latest bytes may be in libhdf5's buffers
    with h5py.File(tmp_path / "block.h5", "r") as file:
        assert np.array_equal(mapped(file["data"]), array)  # the offset counts the user block
    with h5py.File(tmp_path / "compound.h5", "w") as file:
        file.create_dataset("data", data=np.zeros(3, [("a", "<i2"), ("b", "<f8")]))
        file.create_dataset("empty", shape=(0, 4), dtype="f4")
        assert mapped(file["data"]) is None and mapped(file["empty"]) is None


def test_data_past_the_end_of_the_file_is_refused_before_it_could_be_mapped(tmp_path):
    """A file whose superblock lies about its end (truncated, then patched): libhdf5 refuses to open
    data that ends past it, so `mapped` never maps pages the file does not have (SIGBUS on access)."""
    import h5py

    import usidbridge as ub

    path = tmp_path / "cut.h5"
    with h5py.File(path, "w", libver="earliest") as file:
        file.create_dataset("data", data=np.arange(100_000, dtype="f8").reshape(1000, 100))
    size = 400_000
    with open(path, "r+b") as handle:
        handle.truncate(size)
        handle.seek(40)  # superblock version 0: the end-of-file address
        handle.write(size.to_bytes(8, "little"))
    with pytest.raises(UnreadableFileError, match="cut.h5"):
        ub.read(path, lazy=True)


def test_large_reads_bypass_libhdf5_only_while_nobody_writes_the_file(tmp_path):
    """Whole rows of contiguous data are read in parallel parts straight from the file; while a handle
    in this process writes the file, its latest data may be in libhdf5's buffers, so libhdf5 reads it."""
    import h5py

    path = tmp_path / "big.h5"
    array = np.arange(5_000_000, dtype=">f4").reshape(5000, 1000)  # 19 MiB, big-endian
    with h5py.File(path, "w") as file:
        file.create_dataset("data", data=array)
    with h5py.File(path, "r") as file:
        rows = FileArray(file["data"])
        assert file_bytes(file["data"]) is not None
        for key in [(), np.s_[...], np.s_[:], np.s_[100:4900], np.s_[100:4900, :], np.s_[::2], np.s_[5, :], np.s_[:, 3]]:
            part = rows[key]
            assert np.array_equal(part, array[key]) and part.dtype == array.dtype, key
    with h5py.File(path, "r+") as writer, h5py.File(path, "r") as reader:
        writer["data"][0, 0] = -1
        assert file_bytes(reader["data"]) is None and FileArray(reader["data"])[()][0, 0] == -1


def test_leading_rows_are_the_keys_whose_bytes_are_one_run():
    array = np.arange(5 * 3 * 2).reshape(5, 3, 2)
    runs = [(), Ellipsis, np.s_[:], np.s_[1:4], np.s_[1:4, :], np.s_[1:4, ...], np.s_[4:1], np.s_[-2:], np.s_[..., :], np.s_[:, ..., :]]
    others = [np.s_[..., 1], np.s_[1:4, 1], np.s_[::2], 3, np.s_[[1, 2]], np.s_[np.array([1])], np.s_[:, 1:]]
    for key in runs:
        start, stop = leading_rows(key, array.shape)
        assert np.array_equal(array[key], array[start:stop]), key
    assert all(leading_rows(key, array.shape) is None for key in others) and leading_rows((), ()) is None


def test_a_file_that_ends_inside_the_data_is_an_error(tmp_path):
    path = tmp_path / "short.bin"
    path.write_bytes(bytes(range(256)) * 64)
    target = np.empty(20_000, np.uint8)
    with open(path, "rb") as handle:
        with pytest.raises(UnreadableFileError, match="short.bin: the file ended 3616 bytes before the end of its data"):
            read_in_parts(handle.fileno(), 0, target, str(path))
        read_in_parts(handle.fileno(), 1000, target[:15_000], str(path))
    assert np.array_equal(target[:15_000], np.frombuffer(path.read_bytes()[1000:16_000], np.uint8))


def test_reads_outside_libhdf5_follow_the_open_file_not_its_name(tmp_path, monkeypatch):
    """A file opened by a relative name, then the process moves to a folder with another file of
    that name: the data still comes from the file libhdf5 opened."""
    import h5py

    import usidbridge as ub

    array = np.arange(5_000_000, dtype="<f4").reshape(2500, 2000)
    dims = [ub.Dimension("Y", "m", 50), ub.Dimension("X", "m", 50)], [ub.Dimension("V", "V", 2000)]
    for folder, data in (("first", array), ("second", -array)):
        (tmp_path / folder).mkdir()
        ub.write(ub.Dataset.from_ndarray(data.reshape(50, 50, 2000), *dims), tmp_path / folder / "map.h5")
    monkeypatch.chdir(tmp_path / "first")
    (lazy,) = ub.read("map.h5", lazy=True)
    with h5py.File("map.h5", "r") as file:
        raw = file["Measurement_000/Channel_000/Raw_Data"]
        monkeypatch.chdir(tmp_path / "second")
        assert np.array_equal(FileArray(raw)[()], array) and np.array_equal(mapped(raw), array)
    assert np.array_equal(np.asarray(lazy.data), array) and np.array_equal(lazy.lazy_nd(map_file=True).compute(), array.reshape(50, 50, 2000))


@pytest.mark.parametrize("cores", [1, 2, 3])
def test_pieces_at_gapped_offsets_read_alike_on_any_number_of_threads(tmp_path, monkeypatch, cores):
    """`read_pieces` (EDF frames with headers between them) fills each buffer with its own bytes,
    however the pieces are shared among threads, with pieces of any size, empty ones included."""
    from usidbridge import lazy

    monkeypatch.setattr(lazy, "PART_MIN_BYTES", 64)
    monkeypatch.setattr(lazy.os, "sched_getaffinity", lambda _pid: set(range(cores)))
    content = np.random.default_rng(cores).integers(0, 256, 40_000, dtype=np.uint8)
    path = tmp_path / "frames.bin"
    path.write_bytes(content.tobytes())
    offsets, sizes = [0, 700, 5000, 5000, 20_001, 39_000], [600, 4000, 0, 15_000, 9_000, 1000]
    buffers = [np.empty(size, np.uint8) for size in sizes]
    with open(path, "rb") as handle:
        lazy.read_pieces(handle.fileno(), list(zip(offsets, buffers)), str(path))
    for offset, buffer in zip(offsets, buffers):
        assert np.array_equal(buffer, content[offset : offset + buffer.size])


@pytest.mark.parametrize("head_start, piece", [(8 * 2**20, 2**20), (0, 2**16), (10**6, 333_333)])
def test_a_background_read_is_the_data_h5py_reads_and_only_for_one_run(tmp_path, monkeypatch, head_start, piece):
    """`BackgroundRead` reads contiguous data of 1 MiB and more in another thread, which this one
    meets at the end, piece by piece; chunked data, small data and no dataset (a lazy read) start
    nothing, and the caller reads as before."""
    import threading

    import h5py

    from usidbridge import lazy
    from usidbridge.lazy import BackgroundRead

    monkeypatch.setattr(lazy, "BACKGROUND_HEAD_START", head_start)
    monkeypatch.setattr(lazy, "BACKGROUND_PIECE_BYTES", piece)

    array = np.arange(600_000, dtype=">f8").reshape(1000, 600)
    with h5py.File(tmp_path / "data.h5", "w") as file:
        file["contiguous"], file["small"] = array, array[:10]
        file.create_dataset("chunked", data=array, chunks=(100, 600))
    with h5py.File(tmp_path / "data.h5", "r") as file:
        threads = threading.active_count()
        with BackgroundRead(file["contiguous"], "data.h5") as background:
            attribute_meanwhile = file["small"].shape
            data = background.result()
        assert np.array_equal(data, array) and data.dtype == array.dtype and attribute_meanwhile == (10, 600)
        assert threading.active_count() == threads  # its thread ended with the block: a fork is safe again
        for dataset in (file["chunked"], file["small"], None):
            with BackgroundRead(dataset) as background:
                assert background.result() is None


def test_a_failed_background_read_is_an_error_of_the_file_in_the_caller(tmp_path, monkeypatch):
    import errno

    import h5py

    from usidbridge import lazy

    with h5py.File(tmp_path / "data.h5", "w") as file:
        file["data"] = np.zeros(300_000)

    def failing(*_args):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(lazy.os, "preadv", failing)
    with h5py.File(tmp_path / "data.h5", "r") as file, lazy.BackgroundRead(file["data"], str(tmp_path / "data.h5")) as background:
        with pytest.raises(UnreadableFileError, match="data.h5: cannot read the data: Input/output error"):
            background.result()
