"""Strict YAML for search space files: what PyYAML accepts silently or too slowly is refused here.

:func:`load_yaml` reads one document with PyYAML's safe loader, but first looks at the composed
node graph (which holds each anchored value once, its aliases pointing at it):

- a key given twice in one mapping is refused with its path and both lines (PyYAML keeps the last
  one: ``epochs: 1`` then ``epochs: 3`` would train 3 epochs);
- an alias inside the value of its own anchor (``mixer: &m [*m]``) is refused: the value would
  contain itself;
- a document whose aliases expand to more than :data:`MAX_VALUES` values (an "alias bomb": a 1 KB
  file can stand for billions) is refused at once, before anything is built from it;
- an empty document (no content, or comments only) is refused: it would run a whole default search;
- ``1e-4`` is a float, as in YAML 1.2 (PyYAML's YAML 1.1 would read the string "1e-4").

Errors are :class:`search.errors.UserError` naming the file, the line and what is valid.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from search.errors import UserError

# The most values (scalars, lists, mappings) a document may stand for once its aliases are expanded.
# A space file has a few hundred; the limit only stops documents that would take minutes to read.
MAX_VALUES = 100_000
MERGE_TAG = "tag:yaml.org,2002:merge"
NULL_TAG = "tag:yaml.org,2002:null"


class _Loader(yaml.SafeLoader):
    """The safe loader, keeping each document's anchor names (for messages)."""

    anchor_names: dict[int, str]

    def compose_document(self) -> Node | None:
        self.get_event()  # DOCUMENT-START
        node = self.compose_node(None, None)
        self.get_event()  # DOCUMENT-END
        self.anchor_names = {id(n): name for name, n in self.anchors.items()}
        self.anchors = {}
        return node


# YAML 1.1 (PyYAML) reads ``1e-4`` as a string (its floats need a dot: ``1.0e-4``); YAML 1.2 and
# every other language read a number. A space file means the number: read it as a float.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789"))


def load_yaml(text: str, label: str) -> Any:
    """The one YAML document of ``text`` (from the file ``label``), checked as the module says."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None or (isinstance(node, ScalarNode) and node.tag == NULL_TAG):
            raise UserError(f"{label}: the file is empty; expected a mapping of sections (at least `model:` "
                            "and `search:`, see docs/spaces.md)")
        _Checker(label, loader.anchor_names).check(node)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise UserError(f"{label}: not valid YAML: {where}{getattr(err, 'problem', None) or err}") from None
    except RecursionError:
        raise UserError(f"{label}: not valid YAML: nested too deeply; expected a space file of a few levels "
                        "(sections, fields, {choice: [...]})") from None
    finally:
        loader.dispose()


class _Checker:
    """One walk over the node graph: duplicate keys, self-containing values, the expanded size."""

    def __init__(self, label: str, anchors: dict[int, str]) -> None:
        self.label, self.anchors = label, anchors
        self.sizes: dict[int, int] = {}  # expanded size of each node seen (aliases share nodes)
        self.open: set[int] = set()  # nodes whose walk has not ended (a cycle comes back to one)

    def check(self, root: Node) -> None:
        total = self.size(root, "")
        if total > MAX_VALUES:  # (also caught on the way, as soon as one value is too big)
            self.too_big(root, "")

    def too_big(self, node: Node, path: str) -> None:
        where = f"{path}: " if path else ""
        raise UserError(f"{self.label}: {where}line {node.start_mark.line + 1}: the aliases of this document "
                        f"expand to more than {MAX_VALUES:,} values; expected a space file without nested "
                        "aliases that multiply (an alias bomb?)")

    def size(self, node: Node, path: str) -> int:
        key = id(node)
        if key in self.sizes:
            return self.sizes[key]
        if key in self.open:
            anchor = self.anchors.get(key)
            name = f"&{anchor} " if anchor else ""
            raise UserError(f"{self.label}: {path or 'the document'}: line {node.start_mark.line + 1}: the anchor "
                            f"{name}is used inside its own value (*{anchor or '...'}); expected an alias "
                            "only after the value of its anchor has ended")
        self.open.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                total += self.size(item, f"{path}[{i}]")
                if total > MAX_VALUES:
                    self.too_big(node, path)
        elif isinstance(node, MappingNode):
            self.duplicates(node, path)
            for key_node, value_node in node.value:
                name = key_node.value if isinstance(key_node, ScalarNode) else "?"
                total += self.size(key_node, path) + self.size(value_node, f"{path}.{name}" if path else str(name))
                if total > MAX_VALUES:
                    self.too_big(node, path)
        self.open.discard(key)
        self.sizes[key] = total
        return total

    def duplicates(self, node: MappingNode, path: str) -> None:
        """A key written twice in this mapping (keys brought in by a ``<<`` merge may be overridden)."""
        first: dict[str, tuple[int, int]] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == MERGE_TAG:
                continue
            at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key_node.value in first:
                where = f"{path}.{key_node.value}" if path else key_node.value
                before = first[key_node.value]
                column = (lambda mark: f", column {mark[1]}") if before[0] == at[0] else (lambda mark: "")
                raise UserError(f"{self.label}: {where}: line {at[0]}{column(at)}: duplicate key (first at line "
                                f"{before[0]}{column(before)}); expected each key once per mapping")
            first[key_node.value] = at
