"""YAML to plain Python data, remembering the line of every key and list item.

Errors in a recipe must point at the offending line, and pydantic only knows key paths, so
the loader records ``path -> line`` while it builds the data: ``("stages", 2, "lr") -> 14``.

Two deliberate differences from ``yaml.safe_load``:
- ``1e-5`` is a float (PyYAML follows YAML 1.1, which needs ``1.0e-5``; a learning rate
  written the common way would silently become a string);
- a key repeated in one mapping is an error instead of "last one wins".
Anchors, aliases and ``<<`` merge keys work as usual, but the data they expand to is
bounded (``_MAX_EXTRA_VALUES``): the loader copies every alias, so a "billion laughs"
document of a few lines would otherwise take all memory.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from cascade.errors import CascadeError

Path = tuple[str | int, ...]

# Values the loader may build beyond one per character of the text. Without aliases a
# document has fewer values than characters, so only alias expansion can reach this.
_MAX_EXTRA_VALUES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader whose float rule also accepts exponents without a dot (``1e-5``)."""


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
# Replace the float resolver (rather than add a second one) so ints keep priority.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def load_yaml_with_lines(text: str, source: str) -> tuple[Any, dict[Path, int]]:
    """Parse one YAML document; return ``(data, lines)`` with 1-based lines per path."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Path, int] = {}
        if node is None:
            return None, lines
        lines[()] = node.start_mark.line + 1
        budget = _Budget(len(text) + _MAX_EXTRA_VALUES, source)
        return _build(loader, node, (), lines, source, budget), lines
    except yaml.YAMLError as exc:  # syntax, and construction (a bad merge key, an unknown tag)
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise CascadeError(f"invalid YAML: {problem}", file=source, line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise CascadeError("YAML nested too deeply to read", file=source) from None
    finally:
        loader.dispose()


class _Budget:
    """Counts the values built; an error names the line where the limit was passed."""

    def __init__(self, limit: int, source: str) -> None:
        self.left = limit
        self.source = source

    def spend(self, node: yaml.Node) -> None:
        self.left -= 1
        if self.left < 0:
            raise CascadeError(
                "the YAML expands to too much data (aliases that copy aliases, a 'billion "
                "laughs' document?)",
                file=self.source,
                line=node.start_mark.line + 1,
            )


def parse_yaml_value(text: str) -> Any:
    """A single YAML value, e.g. the right side of ``lr=1e-5`` or ``adam_betas=[0.9,0.99]``."""
    return yaml.load(text, Loader=_Loader) if text.strip() else ""


def _build(loader: _Loader, node: yaml.Node, path: Path, lines: dict[Path, int], source: str, budget: _Budget) -> Any:
    budget.spend(node)
    if isinstance(node, yaml.MappingNode):
        explicit = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
        loader.flatten_mapping(node)  # resolves `<<: *anchor` merges into plain pairs
        # flatten_mapping puts merged pairs first; explicit keys may override those.
        first_explicit = len(node.value) - explicit
        out: dict[Any, Any] = {}
        explicit_keys: set[Any] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise CascadeError(
                    f"a mapping key must be a plain value, not a {type(key).__name__}",
                    file=source,
                    line=line,
                    field=_dotted(path) or None,
                )
            if index >= first_explicit:
                if key in explicit_keys:
                    raise CascadeError(
                        "duplicate key in one mapping", file=source, line=line, field=_dotted(path + (key,))
                    )
                explicit_keys.add(key)
            lines[path + (key,)] = line
            out[key] = _build(loader, value_node, path + (key,), lines, source, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            items.append(_build(loader, item, path + (index,), lines, source, budget))
        return items
    return loader.construct_object(node, deep=True)


def _dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)
