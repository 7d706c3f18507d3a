"""Labels (Sunstone 5's grouping): the dashboard's name for the services' own tags.

A label is a tag, stored verbatim: Nova server tags, Neutron tags, Glance image tags.
Cinder has no tags: a volume's label is a metadata key of its own, ``kumo:label:<label>``
with the value ``true``, so Cinder's own metadata filter finds the volumes with one
label, server-side and paged (``openstack volume list --property kumo:label:team:web=true``
is the same query), and ``openstack volume show`` lists the labels among its properties.

Nesting: Nova and Neutron refuse ``/`` in a tag, so a label's levels are separated by
``:`` (``team:web`` sits under ``team``). The dashboard takes ``/`` typed by a user as the
same separator and stores ``:`` (``team/web`` is stored as ``team:web``). The tree is drawn
from the labels that are there; filtering by a branch is Nova's ``tags-any`` with the
branch and every label under it, the same query as ``openstack server list --any-tags``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

SEPARATOR = ":"
TYPED_SEPARATOR = "/"
EMPTY = "A label cannot be empty."
VOLUME_LABEL_PREFIX = "kumo:label:"
VOLUME_LABEL_VALUE = "true"


def normalize(text: str) -> str:
    """A label as typed, as it is stored: trimmed, ``/`` becomes ``:``, and spaces around
    each level dropped (``team / web`` is ``team:web``). Anything else is left for the
    API to accept or refuse in its own words."""
    levels = text.strip().replace(TYPED_SEPARATOR, SEPARATOR).split(SEPARATOR)
    return SEPARATOR.join(level.strip() for level in levels)


def volume_label_key(label: str) -> str:
    """The metadata key that holds ``label`` (as stored, see normalize) on a volume."""
    return VOLUME_LABEL_PREFIX + label


def volume_labels(metadata: dict[str, str] | None) -> list[str]:
    """The labels of a volume, from its metadata, sorted."""
    return sorted(
        key.removeprefix(VOLUME_LABEL_PREFIX)
        for key in metadata or {}
        if key.startswith(VOLUME_LABEL_PREFIX) and len(key) > len(VOLUME_LABEL_PREFIX)
    )


@dataclass
class Node:
    """One level of the label tree: ``path`` is the label it stands for (``team:web``),
    ``present`` whether that exact label is on something (``team`` may only be a
    prefix), ``labels`` the branch's labels that exist, itself included."""

    name: str
    path: str
    present: bool = False
    children: list[Node] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


def tree(labels: Iterable[str]) -> list[Node]:
    """The labels as a tree of their ``:``-separated levels, each level sorted by name."""
    roots: dict[str, Node] = {}
    index: dict[str, Node] = {}
    for label in sorted(set(labels)):
        parts = label.split(SEPARATOR)
        siblings = roots
        parent: Node | None = None
        for depth in range(len(parts)):
            path = SEPARATOR.join(parts[: depth + 1])
            node = index.get(path)
            if node is None:
                node = Node(parts[depth], path)
                index[path] = node
                if parent is None:
                    siblings[path] = node
                else:
                    parent.children.append(node)
            parent = node
        assert parent is not None
        parent.present = True
    for path, node in index.items():
        node.children.sort(key=lambda child: child.name)
        node.labels = sorted(
            p
            for p, n in index.items()
            if n.present and (p == path or p.startswith(path + SEPARATOR))
        )
    return [roots[k] for k in sorted(roots)]
