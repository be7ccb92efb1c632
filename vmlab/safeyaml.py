"""YAML written by hand, read safely: no Python tags, no key given twice, bounded work.

PyYAML's safe loader already refuses ``!!python/...`` tags and builds aliases as shared
references (so an "alias bomb" costs no memory). It parses with libyaml where PyYAML has it
(30 times faster than the pure-Python parser: 1 MiB in a fraction of a second). On top of
it this loader:

- refuses a key given twice in one mapping (PyYAML silently keeps the last one);
- supports merge keys (``<<: *defaults``, https://yaml.org/type/merge.html): the merged
  mappings' keys come first and the mapping's own keys override them; of several merged
  mappings, the earlier one wins. A key from a merge is not "given twice";
- bounds what a small file can make it do: nesting depth (checked on the event stream
  before any node is built: PyYAML's composer recurses, so 10,000 brackets were a
  RecursionError), integers of more than 64 bits (Python refuses to convert more than
  4,300 digits), and how many keys merges copy in all;
- turns a value PyYAML cannot build (``2023-02-30`` as a date) into a marked YAML error.

Every problem is a ``yaml.MarkedYAMLError`` with the line and column, so the caller can
say where it is.
"""
from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

#: Deeper than any profile needs (stages[i].run[j] is four levels), far below Python's stack.
MAX_DEPTH = 64
#: Integers beyond 64 bits fit no profile key (ports, MiB, counts).
MAX_INT_BITS = 64
#: Keys copied by merge keys in one document: a chain of merges doubling at every level must
#: end as an error, not as minutes of work.
MAX_MERGED_KEYS = 10_000

MERGE_TAG = "tag:yaml.org,2002:merge"
VALUE_TAG = "tag:yaml.org,2002:value"


#: libyaml's parser where PyYAML was built with it, else PyYAML's own.
_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SafeLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """PyYAML's safe loader with the rules above."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._merged_keys = 0

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:  # a constructor's own conversion failed
            raise ConstructorError(None, None, f"cannot read this value: {exc}",
                                   node.start_mark) from None

    def count_merged(self, count: int, node: Node) -> None:
        self._merged_keys += count
        if self._merged_keys > MAX_MERGED_KEYS:
            raise ConstructorError(None, None,
                                   f"merge keys (<<) copy more than {MAX_MERGED_KEYS} keys",
                                   node.start_mark)


def _construct_mapping(loader: SafeLoader, node: Node) -> dict[Any, Any]:
    if not isinstance(node, MappingNode):
        raise ConstructorError(None, None, f"expected a mapping, found {node.id}",
                               node.start_mark)
    merged: dict[Any, Any] = {}
    own: dict[Any, Any] = {}
    merge_seen = False
    for key_node, value_node in node.value:
        if key_node.tag == MERGE_TAG:
            if merge_seen:
                raise ConstructorError(None, None,
                                       "key '<<' is given twice (merge several mappings "
                                       "with a list: <<: [*a, *b])", key_node.start_mark)
            merge_seen = True
            for source in _merge_sources(value_node):
                values = loader.construct_object(source, deep=True)
                loader.count_merged(len(values), value_node)
                for key, value in values.items():
                    merged.setdefault(key, value)  # an earlier mapping wins
            continue
        if key_node.tag == VALUE_TAG:
            key: Any = loader.construct_scalar(key_node)  # type: ignore[arg-type]
        else:
            key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise ConstructorError(None, None, "a key must be a plain value, not a list or a "
                                   "mapping", key_node.start_mark) from None
        if key in own:
            raise ConstructorError(None, None, f"key {key!r} is given twice",
                                   key_node.start_mark)
        own[key] = loader.construct_object(value_node, deep=True)
    return {**merged, **own}


def _merge_sources(node: Node) -> list[MappingNode]:
    """The mappings a merge key names: one mapping, or a list of them."""
    sources = node.value if isinstance(node, SequenceNode) else [node]
    for source in sources:
        if not isinstance(source, MappingNode):
            raise ConstructorError(None, None, "a merge key (<<) takes a mapping or a list of "
                                   f"mappings, not {source.id}", source.start_mark)
    return sources


def _construct_int(loader: SafeLoader, node: Node) -> int:
    text = str(node.value).replace("_", "")
    digits = text.lstrip("+-")
    # PyYAML's int() of a long decimal string is quadratic and refused past 4,300 digits;
    # a 64-bit integer never has more than 20 digits in any base PyYAML reads.
    if len(digits) > 70:
        raise ConstructorError(None, None, f"integer of {len(digits)} digits is too large",
                               node.start_mark)
    value = yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
    if value.bit_length() > MAX_INT_BITS:
        raise ConstructorError(None, None, f"integer {text} is too large", node.start_mark)
    return value


SafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
SafeLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH, reading only events (an iterative parser)."""
    depth = 0
    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def load(text: str) -> Any:
    """The document in ``text``; a yaml.YAMLError (marked where possible) for any problem."""
    _check_depth(text)
    loader = SafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
