"""People: which face tracks show the same person, whatever order they arrived in.

Two tracks are linked when their identities (emotrack.identity: each track's mean SFace
embedding, unit length) have a cosine of at least `threshold`; a person is a connected group
of linked tracks (single linkage). The grouping depends only on the set of tracks, never on
their order, so a night that adds tracks gives the grouping one run over all of them would:
a new track joins the person it links to, starts a person if it links to none, and merges
the people it links together (the older id stays; the merge is recorded).

People's own decisions (`emotrack people merge | split`) hold through every grouping: a merge
links a track of each person for good; a split keeps the tracks it moved apart from the
tracks it left (a group that a later track would join across them is divided, each of its
tracks going to the side of the track it is most like).

    assign_people(identities, known, decisions, threshold) -> Assignment
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

CELLS = 1 << 24  # similarities computed at a time (64 MB of float32)
Track = tuple[str, int]  # (video_id, track_id)


def linked_pairs(new: np.ndarray, every: np.ndarray, threshold: float) -> Iterable[tuple[int, int]]:
    """(i, j) for each row i of `new` (float32 (M, 128)) and row j of `every` (N, 128) whose
    cosine is at least threshold, a block of `new` at a time (CELLS similarities)."""
    step = max(1, CELLS // max(len(every), 1))
    for start in range(0, len(new), step):
        block = new[start : start + step] @ every.T
        rows, cols = np.nonzero(block >= threshold)
        yield from zip((rows + start).tolist(), cols.tolist(), strict=True)


class _UnionFind:
    def __init__(self, count: int) -> None:
        self.parent = list(range(count))

    def root(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass(frozen=True)
class Split:
    """A person's decision that the tracks `moved` are someone else than the tracks `left`."""

    moved: frozenset[Track]
    left: frozenset[Track]


@dataclass
class Assignment:
    """The grouping's outcome: each track's person, and the merges it made."""

    people: dict[Track, str]
    merges: list[tuple[str, str]] = field(default_factory=list)  # (kept, merged into it)


def assign_people(
    identities: pd.DataFrame,
    known: dict[Track, str],
    threshold: float,
    links: Iterable[tuple[Track, Track]] = (),
    splits: Iterable[Split] = (),
    next_number: int = 1,
) -> Assignment:
    """Every track's person.

    identities: one row per track (video_id, track_id, embedding: 128 floats of unit
    length). known: the people given before (track -> person_id) for the tracks that had
    one; they start as groups of their own, as the last grouping left them, and the other
    tracks are linked to every track (threshold). links: pairs of tracks that are one
    person (merges people made); splits: tracks that are not (see Split). A group that
    holds tracks of several known people keeps the oldest id (the smallest number) and
    records the others' merges; a group with no known track gets a new id, `p` +
    next_number (or one more than any known id), and so on, in the order of its first track.
    """
    tracks: list[Track] = list(
        zip(identities["video_id"], identities["track_id"].astype(int), strict=True)
    )
    index = {track: i for i, track in enumerate(tracks)}
    vectors = (
        np.stack(identities["embedding"].map(np.asarray).to_list()).astype(np.float32)
        if len(identities)
        else np.zeros((0, 128), np.float32)
    )
    groups = _UnionFind(len(tracks))
    first_of: dict[str, int] = {}
    for i, track in enumerate(tracks):
        person = known.get(track)
        if person is not None:
            groups.union(first_of.setdefault(person, i), i)
    new = [i for i, track in enumerate(tracks) if track not in known]
    for a, b in linked_pairs(vectors[new], vectors, threshold):
        groups.union(new[a], b)
    for one, other in links:
        if one in index and other in index:
            groups.union(index[one], index[other])
    labels = [groups.root(i) for i in range(len(tracks))]
    for split in splits:
        _keep_apart(labels, split, index, vectors)
    given = max((number(p) for p in known.values()), default=0) + 1  # never reuse a known id
    return _name_groups(tracks, labels, known, max(next_number, given))


def _keep_apart(
    labels: list[int], split: Split, index: dict[Track, int], vectors: np.ndarray
) -> None:
    """Divide each group that holds tracks of both sides of `split`: each of its tracks goes
    to the side of the split's track it is most like (labels: rewritten in place)."""
    moved = {index[t] for t in split.moved if t in index}
    left = {index[t] for t in split.left if t in index}
    for group in {labels[i] for i in moved} & {labels[i] for i in left}:
        members = [i for i, label in enumerate(labels) if label == group]
        anchors = sorted(i for i in moved | left if labels[i] == group)
        nearest = np.argmax(vectors[members] @ vectors[anchors].T, axis=1)
        fresh = max(labels) + 1
        for member, anchor in zip(members, nearest.tolist(), strict=True):
            if anchors[anchor] in moved:
                labels[member] = fresh


def _name_groups(
    tracks: list[Track], labels: list[int], known: dict[Track, str], next_number: int
) -> Assignment:
    members: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        members.setdefault(label, []).append(i)
    people: dict[Track, str] = {}
    merges: list[tuple[str, str]] = []
    taken: set[str] = set()
    for label in sorted(members, key=lambda g: min(tracks[i] for i in members[g])):
        group = members[label]
        before = sorted({known[tracks[i]] for i in group if tracks[i] in known}, key=number)
        before = [p for p in before if p not in taken]  # a divided person: one side keeps it
        if before:
            person = before[0]
            merges += [(person, other) for other in before[1:]]
        else:
            person = f"p{next_number}"
            next_number += 1
        taken.add(person)
        for i in group:
            people[tracks[i]] = person
    return Assignment(people, merges)


def number(person_id: str) -> int:
    """The number of a person id (`p12` -> 12): older people have smaller ones."""
    return int(person_id[1:])
