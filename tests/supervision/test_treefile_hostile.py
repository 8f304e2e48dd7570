"""Tree files a hostile or careless user might hand over: every one is a
`ConfigError` naming the file, never another exception (which `hedgerow run`
would show as a traceback, and a reload would let stop the running tree)."""

from __future__ import annotations

import os

import pytest

import hedgerow as hr
from hedgerow.supervision import _treeparse

DEEP = 100_000


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".json", "[" * DEEP + "]" * DEEP),
        (".yaml", "[" * DEEP + "]" * DEEP),
        (".toml", "a = " + "[" * DEEP + "]" * DEEP),
    ],
    ids=["json", "yaml", "toml"],
)
def test_a_file_nested_too_deeply_to_parse_is_a_config_error(tmp_path, suffix, text):
    file = tmp_path / f"tree{suffix}"
    file.write_text(text)
    with pytest.raises(hr.ConfigError) as error:
        hr.load_tree(file)
    assert str(file) in str(error.value)
    assert "nested more than" in str(error.value)


def test_a_fifo_a_device_or_a_directory_is_refused_unread(tmp_path):
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)  # nobody writes: opening it to read would wait for ever
    device = tmp_path / "zero.toml"
    device.symlink_to("/dev/zero")  # reading it would never end
    directory = tmp_path / "dir.toml"
    directory.mkdir()
    for file in (fifo, device, directory):
        with pytest.raises(hr.ConfigError, match="not a regular file") as error:
            hr.load_tree(file)
        assert str(file) in str(error.value)


def test_a_file_too_large_to_be_a_tree_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(_treeparse, "MAX_BYTES", 1024)
    file = tmp_path / "big.toml"
    file.write_text("# " + "x" * 2000 + "\n")
    with pytest.raises(hr.ConfigError, match="larger than"):
        hr.load_tree(file)
