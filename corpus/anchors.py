"""GitHub heading anchors."""

from __future__ import annotations

import re

_DROP = re.compile(r"[^\w\- ]", re.UNICODE)


def slugify(heading: str) -> str:
    """The anchor GitHub gives a heading.

    >>> slugify("VPC (Virtual Private Cloud)")
    'vpc-virtual-private-cloud'
    >>> slugify("What is kubernetes ? ")
    'what-is-kubernetes-'
    """
    return _DROP.sub("", heading.strip().lower()).replace(" ", "-")


class AnchorCounter:
    """Hands out unique anchors in file order: a repeated anchor gets `-1`, `-2`, ..."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}
        # "" is the key of the text above the first heading (`path` alone), so an empty heading (`### `) gets
        # `-1` rather than the same key as that preamble.
        self._used: set[str] = {""}

    def __call__(self, heading: str) -> str:
        """`Foo`, `Foo`, `Foo-1` -> `foo`, `foo-1`, `foo-1-1` (the third may not take the second's anchor)."""
        anchor = base = slugify(heading)
        while anchor in self._used:
            count = self._seen.get(base, 0) + 1
            self._seen[base] = count
            anchor = f"{base}-{count}"
        self._used.add(anchor)
        return anchor
