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

    def __call__(self, heading: str) -> str:
        base = slugify(heading)
        count = self._seen.get(base, 0)
        self._seen[base] = count + 1
        return base if count == 0 else f"{base}-{count}"
