"""Reading a city profile's YAML with bounded work, before anything is validated or built from it.

A profile is refused over MAX_PROFILE_BYTES before parsing, and over MAX_PROFILE_VALUES YAML values
once its aliases (`*name`) are expanded ("billion laughs": nine levels of nine aliases are a 1 KB
file of 387 million strings), counted on the node graph without expanding it. libyaml's parser
bounds the nesting depth. Every `crime-pipeline` command loads every profile, so this is what keeps
one hostile profile from stalling them all.
"""

from __future__ import annotations

import reprlib
from pathlib import Path

import yaml

# A built-in profile is about 6 KB and 500 values.
MAX_PROFILE_BYTES = 256 * 1024
MAX_PROFILE_VALUES = 50_000


class ProfileError(ValueError):
    """A city profile is missing, unreadable or invalid; the message names the file and the field."""


# A bad value's text, built only as far as shown (a full repr of a large aliased list would not end).
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxstring, _SHORT.maxother = 3, 8, 8, 78, 78


def short_repr(value) -> str:
    """At most 80 characters of `value`'s repr."""
    return _SHORT.repr(value)[:80]


class _ProfileLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """yaml's safe loader (libyaml's when present: it bounds nesting depth itself)."""


def _expanded_values(root) -> int:
    """How many YAML values the node graph holds once aliases are expanded, counted without expanding
    (an alias shares its anchor's node); ValueError over MAX_PROFILE_VALUES or on an alias cycle."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, finished = stack.pop()
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        if finished:
            on_path.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(node)] > MAX_PROFILE_VALUES:
                raise ValueError(f"it holds more than {MAX_PROFILE_VALUES:,} values once its aliases are expanded")
        elif id(node) not in sizes:
            if id(node) in on_path:
                raise ValueError("it has an alias that contains itself")
            on_path.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes.get(id(root), 0)


def parse_bounded(path: Path) -> object:
    """The YAML document of `path`, refusing a file over MAX_PROFILE_BYTES or MAX_PROFILE_VALUES."""
    with open(path, "rb") as fh:
        raw = fh.read(MAX_PROFILE_BYTES + 1)
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{path}: the file is over the {MAX_PROFILE_BYTES:,}-byte limit for a city profile")
    loader = _ProfileLoader(raw.decode("utf-8"))
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            _expanded_values(node)
        except ValueError as exc:
            raise ProfileError(f"{path}: refused, {exc} (a built-in profile holds about 500)") from None
        return loader.construct_document(node)
    finally:
        loader.dispose()
