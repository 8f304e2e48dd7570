"""Reading a tree file's text safely: whatever the text, a `ConfigError` or plain data.

The parsers of TOML, YAML and JSON raise more than their syntax errors on
hostile text: `RecursionError` for deep nesting, `ValueError` for an integer
literal beyond the interpreter's 4,300 digits, and YAML's aliases can make a
few lines stand for billions of values. Here each becomes a problem naming
the line or key at fault, and the parsed data is checked before anything
else walks it (pydantic, the specs, error messages): at most `MAX_DEPTH`
levels of tables and lists, at most `MAX_VALUES` values, string keys, and
integers short enough to be printed.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml

from hedgerow._exceptions import _UNQUOTED, ConfigError, ConfigProblem

__all__ = [
    "FORMATS",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_VALUES",
    "Format",
    "TooManyDigits",
    "check_data",
    "format_of",
    "parse",
    "read_text",
]

Format = Literal["toml", "yaml", "json"]

FORMATS: dict[str, Format] = {
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
}
"""The formats of tree files, by their extension."""

MAX_BYTES = 8 * 1024 * 1024
"""The largest tree file read (8 MiB): a tree is a page or two of text."""
MAX_DEPTH = 64
"""The deepest nesting of tables and lists in a tree file."""
MAX_VALUES = 100_000
"""The most values (tables, lists, scalars) a tree file's data may hold, aliases expanded."""
MAX_DIGITS = 4300
"""The longest integer in a tree file: Python's default limit on int/str conversion."""
_MAX_BITS = int(MAX_DIGITS * 3.3219280948873626)  # log2(10): bits of MAX_DIGITS digits

MAX_RULE = 300
"""A problem's text is cut to this many characters (a parser's message may quote much)."""


class TooManyDigits:
    """Where the file has an integer too long to convert: the data holds this instead."""

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"<an integer of {self.digits} digits>"


def format_of(path: str | Path) -> Format:
    """The format a file's extension names; ConfigError for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        allowed = ", ".join(sorted(FORMATS))
        rule = f"unknown extension {suffix or '(none)'!r}: expected one of {allowed}"
        raise ConfigError(str(path), [ConfigProblem("", None, rule)])
    return FORMATS[suffix]


def read_text(file: Path) -> str:
    """A tree file's text; `ConfigError` if it is missing, unreadable or too big."""
    try:
        # A FIFO's open must not wait, nor a device's read go on for ever (a
        # node's reload reads here): only a regular file is read at all.
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                rule = "cannot read the file: not a regular file"
                raise ConfigError(str(file), [ConfigProblem("", None, rule)])
            with os.fdopen(fd, "rb", closefd=False) as stream:
                raw = stream.read(MAX_BYTES + 1)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise ConfigError(str(file), [ConfigProblem("", None, "no such file")]) from None
    except OSError as exc:
        problem = ConfigProblem("", None, f"cannot read the file: {exc.strerror or exc}")
        raise ConfigError(str(file), [problem]) from None
    if len(raw) > MAX_BYTES:
        rule = f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB: not a tree file"
        raise ConfigError(str(file), [ConfigProblem("", None, rule)])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        rule = f"cannot read the file: not UTF-8 text (byte {exc.start})"
        raise ConfigError(str(file), [ConfigProblem("", None, rule)]) from None


def parse(text: str, fmt: Format, source: str) -> Any:
    """The data of a tree file's `text`, checked by `check_data`; `ConfigError` if unusable."""
    data = _parse(text, fmt, source)
    check_data(data, source)
    return data


def _parse(text: str, fmt: Format, source: str) -> Any:
    name = fmt.upper()
    try:
        if fmt == "toml":
            return tomllib.loads(text)
        if fmt == "json":
            return json.loads(text, parse_int=_json_int)
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        line, key = _deepest(text)
        rule = f"nested more than {MAX_DEPTH} levels deep"
        return _fail(source, ConfigProblem(key or "", _NOTHING, rule, line))
    except tomllib.TOMLDecodeError as exc:
        problem = ConfigProblem("", None, f"TOML syntax error: {_one_line(exc)}", _toml_line(exc))
    except json.JSONDecodeError as exc:
        problem = ConfigProblem("", None, f"JSON syntax error: {_one_line(exc.msg)}", exc.lineno)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or exc
        problem = ConfigProblem("", None, f"YAML syntax error: {_one_line(what)}", at)
    except ValueError as exc:  # an integer over MAX_DIGITS (TOML), a bad YAML date...
        found = _long_integer(text)
        if found is not None:
            rule = f"an integer of more than {MAX_DIGITS} digits"
            problem = ConfigProblem(found[1] or "", _NOTHING, rule, found[0])
        else:
            problem = ConfigProblem("", None, f"{name}: {_one_line(exc)}")
    return _fail(source, problem)


def _fail(source: str, problem: ConfigProblem) -> Any:
    raise ConfigError(source, [problem])


class _Shown:
    """A problem's value shown as this text (not as a string's repr)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_NOTHING: Any = _UNQUOTED


def _one_line(what: object) -> str:
    text = " ".join(str(what).split())
    return text if len(text) <= MAX_RULE else text[: MAX_RULE - 3] + "..."


def _json_int(text: str) -> int | TooManyDigits:
    digits = len(text.lstrip("-"))
    return TooManyDigits(digits) if digits > MAX_DIGITS else int(text)


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, with an integer too long to convert kept as `TooManyDigits`."""

    def construct_yaml_int(self, node: Any) -> Any:
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            text = str(node.value)
            digits = sum(c.isdigit() for c in text)
            if digits <= MAX_DIGITS:
                raise
            return TooManyDigits(digits)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _toml_line(exc: tomllib.TOMLDecodeError) -> int | None:
    line = getattr(exc, "lineno", None)  # Python 3.14 adds it
    if isinstance(line, int):
        return line
    text = str(exc)
    marker = "(at line "
    if marker in text:
        digits = text.split(marker, 1)[1].split(",", 1)[0]
        if digits.isdigit():
            return int(digits)
    return None


_KEY = re.compile(r"""["']?([A-Za-z0-9_-]+)["']?\s*[:=]""")
_LONG = re.compile(r"[0-9][0-9_]{%d,}" % MAX_DIGITS)  # noqa: UP031 - a regex's braces


def _where(text: str, position: int) -> tuple[int, str | None]:
    """The line of `position` and the last key written before it."""
    line = text.count("\n", 0, position) + 1
    keys = _KEY.findall(text, max(0, position - 10_000), position)
    return line, (keys[-1] if keys else None)


def _long_integer(text: str) -> tuple[int, str | None] | None:
    match = _LONG.search(text)
    if match is None or sum(c.isdigit() for c in match.group()) <= MAX_DIGITS:
        return None
    return _where(text, match.start())


def _deepest(text: str) -> tuple[int, str | None]:
    """Where a file nests too deep: the first bracket beyond `MAX_DEPTH` (quoted text
    skipped, roughly), else the most indented line (YAML's block nesting)."""
    depth = 0
    quote = ""
    for position, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return _where(text, position)
        elif char in "]}":
            depth -= 1
        elif char == "\n":
            quote = ""
    lines = text.splitlines() or [""]
    index = max(range(len(lines)), key=lambda i: len(lines[i]) - len(lines[i].lstrip()))
    return _where(text, sum(len(x) + 1 for x in lines[:index]) + len(lines[index]))


def check_data(data: Any, source: str) -> None:
    """Refuse data that nests deeper than `MAX_DEPTH`, holds more than `MAX_VALUES`
    values, keys that are not strings, or integers too long to print; each
    problem names its key path. An iterative walk: nothing here recurses."""
    problems: list[ConfigProblem] = []
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    count = 0
    while stack and len(problems) < 20:  # noqa: PLR2004 - enough to act on
        value, key, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            rule = f"more than {MAX_VALUES} values (YAML aliases count each time they are used)"
            problems.append(ConfigProblem("", None, rule))
            break
        if isinstance(value, dict | list) and depth >= MAX_DEPTH:
            problems.append(
                ConfigProblem(key, _NOTHING, f"nested more than {MAX_DEPTH} levels deep")
            )
            continue
        if isinstance(value, dict):
            for name, item in reversed(list(value.items())):
                if not isinstance(name, str):
                    rule = "keys must be strings"
                    problems.append(ConfigProblem(key, _key_text(name), rule))
                    continue
                stack.append((item, f"{key}.{name}" if key else name, depth + 1))
        elif isinstance(value, list):
            stack.extend(
                (item, f"{key}[{i}]", depth + 1) for i, item in reversed(list(enumerate(value)))
            )
        elif isinstance(value, TooManyDigits) or (
            isinstance(value, int) and value.bit_length() > _MAX_BITS
        ):
            digits = value.digits if isinstance(value, TooManyDigits) else "over 4300"
            rule = f"an integer of {digits} digits: at most {MAX_DIGITS}"
            problems.append(ConfigProblem(key, _NOTHING, rule))
    if problems:
        raise ConfigError(source, sorted(problems, key=lambda p: p.key))


def _key_text(name: Any) -> _Shown:
    if isinstance(name, int) and name.bit_length() > _MAX_BITS:
        return _Shown("<a long integer>")
    if isinstance(name, tuple | list | dict):
        return _Shown(f"<a {type(name).__name__}>")
    return _Shown(repr(name)[:80])
