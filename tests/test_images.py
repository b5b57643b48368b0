"""The stack mapping shared by the image formats: filling a frame-major stack from position-major data."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import usidbridge as ub
from usidbridge.images import StackRows, dataset_to_stack, fill_stack
from usidbridge.lazy import transpose_into


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=4),
    st.lists(st.integers(1, 4), min_size=1, max_size=3),
    st.integers(1, 64),
)
def test_fill_stack_equals_the_transposed_array(position_sizes, spectral_sizes, block_bytes):
    """Any dims, blocks as small as one position: the filled stack is exactly the N-D array transposed."""
    pos = [ub.Dimension(f"p{number}", "m", size) for number, size in enumerate(position_sizes)]
    spec = [ub.Dimension(f"s{number}", "s", size) for number, size in enumerate(spectral_sizes)]
    array = np.arange(np.prod(position_sizes + spectral_sizes), dtype=np.int32).reshape(position_sizes + spectral_sizes)
    dataset = ub.Dataset.from_ndarray(array, pos, spec)
    expected = np.asarray(dataset_to_stack(dataset)[0])
    stack = np.full(expected.shape, -1, np.int32)
    fill_stack(stack, dataset, block_bytes=block_bytes)
    assert np.array_equal(stack, expected)


def test_fill_stack_into_frames_with_gaps_between_them():
    """EDF frames are separated by their headers: the stack is a strided view, filled without a copy."""
    dataset = ub.Dataset.from_ndarray(np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 2, 5).transpose(0, 1, 3, 2).copy(), [ub.Dimension("Y", "m", 3), ub.Dimension("X", "m", 4)], [ub.Dimension("F", "s", 5), ub.Dimension("G", "s", 2)])
    expected = np.asarray(dataset_to_stack(dataset)[0])
    gap = 7
    buffer = np.zeros(10 * (12 + gap), np.uint16)
    frames = np.lib.stride_tricks.as_strided(buffer[gap:], shape=(10, 3, 4), strides=((12 + gap) * 2, 8, 2))
    fill_stack(frames.reshape(5, 2, 3, 4), dataset, block_bytes=16)
    assert np.array_equal(frames.reshape(expected.shape), expected)
    assert not buffer.reshape(10, 12 + gap)[:, :gap].any()  # the gaps (headers) are untouched


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (1000, 1), (3, 1000), (257, 129)])
def test_transpose_into(shape):
    block = np.random.default_rng(0).random(shape)
    target = np.empty(shape[::-1])
    transpose_into(target, block)
    assert np.array_equal(target, block.T)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.lists(st.integers(1, 4), min_size=1, max_size=3))
def test_stack_rows_read_any_row_range_exactly(position_sizes, spectral_sizes):
    """The inverse of fill_stack: rows transposed out of a stack equal the 2-D data, for every row range."""
    pos = [ub.Dimension(f"p{number}", "m", size) for number, size in enumerate(position_sizes)]
    spec = [ub.Dimension(f"s{number}", "s", size) for number, size in enumerate(spectral_sizes)]
    array = np.arange(np.prod(position_sizes + spectral_sizes), dtype=np.int32).reshape(position_sizes + spectral_sizes)
    dataset = ub.Dataset.from_ndarray(array, pos, spec)
    rows = StackRows(np.ascontiguousarray(dataset_to_stack(dataset)[0]), dataset)
    flat = array.reshape(dataset.shape)
    for start in range(flat.shape[0] + 1):
        for stop in range(start, flat.shape[0] + 1):
            assert np.array_equal(rows[start:stop], flat[start:stop])
