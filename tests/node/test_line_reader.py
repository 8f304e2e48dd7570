"""The node's reader of a worker's lines: lines across reads, the length cap, and the
end once the worker has exited, while a child it left holds the pipe open."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator

import pytest

from hedgerow.node import _line_reader
from hedgerow.node._line_reader import LineReader
from hedgerow.node._lines import MAX_LINE, BadLine

pytestmark = pytest.mark.timeout(30)


class Pipe:
    def __init__(self) -> None:
        self.read, self.write = os.pipe()
        self.open = [self.read, self.write]

    def close_write(self) -> None:
        self.open.remove(self.write)
        os.close(self.write)


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    made = Pipe()
    yield made
    for fd in made.open:
        os.close(fd)


@pytest.fixture
def exited() -> Iterator[int]:
    """A descriptor that is readable, as the pidfd of a process that has exited."""
    read, write = os.pipe()
    os.close(write)
    yield read
    os.close(read)


def all_lines(reader: LineReader) -> list[bytes]:
    lines = []
    while line := reader.read_line():
        lines.append(line)
    return lines


def test_lines_are_whole_across_reads_and_the_last_may_lack_its_newline(pipe):
    os.write(pipe.write, b"a\nbb")
    reader = LineReader(pipe.read, None)
    assert reader.read_line() == b"a\n"
    os.write(pipe.write, b"b\n" + b"tail")
    pipe.close_write()
    assert all_lines(reader) == [b"bbb\n", b"tail"]
    assert reader.read_line() == b""  # and so it stays


def test_a_line_past_the_cap_is_refused_without_reading_much_more():
    with tempfile.TemporaryFile() as file:
        file.write(b"x" * (3 * MAX_LINE))
        file.seek(0)
        with pytest.raises(BadLine, match="longer than"):
            LineReader(file.fileno(), None).read_line()
        assert os.lseek(file.fileno(), 0, os.SEEK_CUR) <= MAX_LINE + _line_reader.CHUNK


def test_a_line_of_exactly_the_cap_is_taken():
    with tempfile.TemporaryFile() as file:
        file.write(b"x" * (MAX_LINE - 1) + b"\n")
        file.seek(0)
        assert len(LineReader(file.fileno(), None).read_line()) == MAX_LINE


def test_once_the_worker_exited_what_it_wrote_is_read_and_then_the_end(pipe, exited):
    # The write end stays open, as a child the worker forked keeps it.
    os.write(pipe.write, b"one\ntwo\nthr")
    reader = LineReader(pipe.read, exited)
    assert all_lines(reader) == [b"one\n", b"two\n", b"thr"]


def test_lines_before_the_exit_are_read_as_they_come(pipe):
    running_read, running_write = os.pipe()  # not readable: the worker runs
    try:
        reader = LineReader(pipe.read, running_read)
        os.write(pipe.write, b"ready\n")
        assert reader.read_line() == b"ready\n"
        pipe.close_write()  # end of file before the exit: the end too
        assert reader.read_line() == b""
    finally:
        os.close(running_read)
        os.close(running_write)


def test_a_child_that_writes_on_after_the_exit_does_not_keep_the_reader(pipe, exited):
    stop = threading.Event()
    os.set_blocking(pipe.write, False)

    def write_on() -> None:  # as fast as the reader takes it, until the test ends
        while not stop.is_set():
            try:
                os.write(pipe.write, b"x" * 1000 + b"\n")
            except BlockingIOError:
                stop.wait(0.001)

    writer = threading.Thread(target=write_on, daemon=True)
    writer.start()
    try:
        taken = sum(len(line) for line in all_lines(LineReader(pipe.read, exited)))
        assert taken <= _line_reader.DRAIN_LIMIT + _line_reader.CHUNK
    finally:
        stop.set()
        writer.join()
