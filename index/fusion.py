"""Fusing ranked lists into one: pure functions over {key: score} maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def normalize(scores: Mapping[str, float]) -> dict[str, float]:
    """Scale scores so the best is 1: `{"a": 4, "b": 1}` -> `{"a": 1.0, "b": 0.25}`."""
    top = max(scores.values(), default=0.0)
    return {key: value / top for key, value in scores.items()} if top > 0 else dict.fromkeys(scores, 0.0)


def ranks(scores: Mapping[str, float]) -> dict[str, int]:
    """1-based rank of each key, best first: `{"a": 0.2, "b": 0.9}` -> `{"b": 1, "a": 2}`."""
    ordered = sorted(scores, key=lambda key: (-scores[key], key))
    return {key: rank for rank, key in enumerate(ordered, start=1)}


def reciprocal_rank_fusion(lists: Sequence[tuple[Mapping[str, float], float]], k: int = 60) -> dict[str, float]:
    """Weighted RRF: sum of weight / (k + rank) over the lists a key appears in.

    `[({"a": 9, "b": 1}, 1.0), ({"b": 5}, 1.0)]` with k=0 -> `{"a": 1.0, "b": 1.5}`
    """
    fused: dict[str, float] = {}
    for scores, weight in lists:
        for key, rank in ranks(scores).items():
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
    return fused
