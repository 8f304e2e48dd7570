"""Tree files a hostile or careless user might hand over: every one is a
`ConfigError` naming the file, never another exception (which `hedgerow run`
would show as a traceback, and a reload would let stop the running tree)."""

from __future__ import annotations

import pytest

import hedgerow as hr

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
    assert "nested too deeply" in str(error.value)
