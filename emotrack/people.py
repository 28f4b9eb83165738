"""People: which face tracks show the same person, whatever order they arrived in.

Two tracks are linked when their identities (emotrack.identity: each track's mean SFace
embedding, unit length) have a cosine of at least `threshold`; a person is a connected group
of linked tracks. The grouping depends only on the set of tracks, never on their order, so
a night that adds tracks gives the grouping a single run over all of them would: a new track
joins the person it links to, starts a person if it links to none, and merges the people it
links together.
"""

from __future__ import annotations

import numpy as np

BLOCK = 4096  # rows of the similarity matrix computed at a time (memory: BLOCK x N floats)


def group_tracks(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """int64 (N,): a person label per track (the smallest index of its group), from
    float32 (N, 128) unit embeddings: the connected groups of tracks whose cosine is at
    least `threshold`."""
    count = len(embeddings)
    parent = np.arange(count)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for start in range(0, count, BLOCK):
        block = embeddings[start : start + BLOCK] @ embeddings.T
        for a, b in zip(*np.nonzero(block >= threshold), strict=True):
            ra, rb = root(int(a) + start), root(int(b))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return np.array([root(i) for i in range(count)], np.int64)
