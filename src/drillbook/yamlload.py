"""Safe YAML loading that remembers line numbers and refuses hostile input.

Why not plain ``yaml.safe_load``: errors must name ``file:line: field``, so every value keeps the
line it came from; and a scenario file is untrusted input, so size, nesting depth and alias
expansion (the "billion laughs" bomb) are capped before anything is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from drillbook.errors import ConfigError

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES", "Loaded", "load_yaml_file", "load_yaml_text"]

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 50_000
MAX_DEPTH = 64
MAX_SCALAR = 64 * 1024
#: libyaml's parser when PyYAML was built with it (about 10x faster); marks and tags are the same.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("map", "seq", "str", "int", "float", "bool", "null")
)


@dataclass
class Loaded:
    """A parsed document plus ``path -> line`` for every mapping key and sequence item."""

    data: Any
    source: str
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)

    def line_of(self, path: tuple[str | int, ...]) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]

    def error(self, path: tuple[str | int, ...], message: str) -> ConfigError:
        return ConfigError(
            message, source=self.source, line=self.line_of(path), field=dotted(path) or None
        )


def dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes = 0
        self.lines: dict[tuple[str | int, ...], int] = {}

    def fail(self, node: yaml.Node, message: str) -> ConfigError:
        return ConfigError(message, source=self.source, line=node.start_mark.line + 1)

    def build(self, node: yaml.Node, path: tuple[str | int, ...], depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, f"document too large: more than {MAX_NODES} values (alias bomb?)")
        if depth > MAX_DEPTH:
            raise self.fail(node, f"nesting deeper than {MAX_DEPTH} levels")
        self.lines.setdefault(path, node.start_mark.line + 1)
        if node.tag not in _ALLOWED_TAGS:
            raise self.fail(node, f"unsupported YAML tag {node.tag!r}: only plain data is accepted")
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.build_scalar(key_node)
                if not isinstance(key, str | int | float | bool) or key is None:
                    raise self.fail(key_node, "mapping keys must be plain scalars")
                skey = str(key)
                if skey in out:
                    raise ConfigError(
                        "duplicate key",
                        source=self.source,
                        line=key_node.start_mark.line + 1,
                        field=dotted((*path, skey)),
                    )
                self.lines[(*path, skey)] = key_node.start_mark.line + 1
                out[skey] = self.build(value_node, (*path, skey), depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self.build_scalar(node)

    def build_scalar(self, node: yaml.Node) -> Any:
        if node.tag not in _ALLOWED_TAGS:
            raise self.fail(node, f"unsupported YAML tag {node.tag!r}: only plain data is accepted")
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, "expected a plain value here")
        if len(node.value) > MAX_SCALAR:
            raise self.fail(node, f"value longer than {MAX_SCALAR} characters")
        loader = yaml.SafeLoader("")
        try:
            return loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self.fail(node, f"invalid value: {exc}") from None


def load_yaml_text(text: str, source: str) -> Loaded:
    """Parse one YAML document (safe tags only) with line numbers."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise ConfigError(f"file larger than {MAX_FILE_BYTES // 1024} KiB", source=source)
    try:
        nodes = list(yaml.compose_all(text, Loader=_LOADER))
    except yaml.reader.ReaderError as exc:
        char = exc.character
        code = ord(char) if isinstance(char, str) else int(char)
        raise ConfigError(
            f"unprintable character #x{code:02x}: scenario and config files must be plain text",
            source=source,
            line=text[: max(0, exc.position)].count("\n") + 1,
        ) from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError(
            f"malformed YAML: {exc.problem or exc.context}", source=source, line=line
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"malformed YAML: {exc}", source=source) from None
    except RecursionError:
        raise ConfigError(f"nesting deeper than {MAX_DEPTH} levels", source=source) from None
    nodes = [n for n in nodes if n is not None]
    if len(nodes) > 1:
        raise ConfigError("expected one YAML document, found several", source=source)
    if not nodes:
        return Loaded(None, source)
    builder = _Builder(source)
    try:
        data = builder.build(nodes[0], (), 0)
    except RecursionError:
        raise ConfigError(f"nesting deeper than {MAX_DEPTH} levels", source=source) from None
    return Loaded(data, source, builder.lines)


def load_yaml_file(path: Path, display: str | None = None) -> Loaded:
    """Read and parse a file, refusing oversized ones before reading them whole."""
    source = display or str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=source) from None
    if size > MAX_FILE_BYTES:
        raise ConfigError(
            f"file is {size} bytes; scenario and config files are limited to "
            f"{MAX_FILE_BYTES // 1024} KiB",
            source=source,
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", source=source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=source) from None
    return load_yaml_text(text, source)
