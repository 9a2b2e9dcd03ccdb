"""Confirmation depth and reorgs for match batches (SPEC C3), as pure functions over plain state.

The worker keeps, per network, in Faust tables (JSON values, so pairs are lists):

- ``recent``: the match batches of each of the last ``RECENT_BLOCKS`` blocks that had any,
  keyed by block hash, with an index of ``[number, hash]``; a retraction sends them again
  marked retracted;
- ``held``: ``[release at number, block hash, monitor id]`` for the batches of monitors that
  ask for more confirmations than the network's level; they are sent when a block at least
  that high arrives, or dropped unsent when their block is retracted first;
- ``orphans``: ``[number, hash]`` of retracted blocks, so a block that arrives after its
  own retraction (a lagging or rejoining worker) sends nothing.

Every function here takes the state it reads and returns the state to write back; none
mutates its arguments, so each rule is testable on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vigil.schemas.records import MatchBatch

RECENT_BLOCKS = 256  # blocks remembered per network: deeper than any reorg window

BlockRef = list[Any]  # [number, hash]
HeldRef = list[Any]  # [release at number, hash, monitor id]


def is_orphaned(orphans: Sequence[BlockRef], block_hash: str) -> bool:
    """Whether the block ``block_hash`` was retracted before (its batches are never sent)."""
    return any(entry[1] == block_hash for entry in orphans)


def within_window(entries: Sequence[list[Any]], number: int) -> list[list[Any]]:
    """The entries (number first) still inside the remembered window at block ``number``."""
    return [list(entry) for entry in entries if entry[0] > number - RECENT_BLOCKS]


@dataclass(frozen=True)
class Remembered:
    """What ``remember`` writes: the new index, and the block hashes that fell out of it."""

    index: list[BlockRef]
    forgotten: list[str]


def remember(index: Sequence[BlockRef], number: int, block_hash: str, found: bool) -> Remembered:
    """The recent-batches index after block ``number`` (listed only when it had batches)."""
    grown = [list(entry) for entry in index] + ([[number, block_hash]] if found else [])
    floor = number - RECENT_BLOCKS  # within_window's bound, once per entry (not a search)
    kept = [entry for entry in grown if entry[0] > floor]
    return Remembered(kept, [entry[1] for entry in grown if entry[0] <= floor])


@dataclass(frozen=True)
class Split:
    """A block's batches: those to send now, and references to those to hold."""

    now: list[MatchBatch]
    hold: list[HeldRef]


def split_by_depth(
    batches: Sequence[MatchBatch], extra_depth: Mapping[str, int], number: int, block_hash: str
) -> Split:
    """Batches of monitors without extra depth go now; the others wait for their depth."""
    now: list[MatchBatch] = []
    hold: list[HeldRef] = []
    for batch in batches:
        depth = extra_depth.get(batch["monitorId"], 0)
        if depth:
            hold.append([number + depth, block_hash, batch["monitorId"]])
        else:
            now.append(batch)
    return Split(now, hold)


@dataclass(frozen=True)
class Release:
    """Held batches whose depth is reached, and those still waiting."""

    due: list[HeldRef]
    waiting: list[HeldRef]


def release(held: Sequence[HeldRef], number: int) -> Release:
    """What block ``number`` releases: every held batch whose release height it reaches."""
    due = [list(entry) for entry in held if entry[0] <= number]
    return Release(due, [list(entry) for entry in held if entry[0] > number])


def due_batches(
    due: Sequence[HeldRef], batches_of: Mapping[str, Sequence[MatchBatch]]
) -> list[MatchBatch]:
    """The batches the ``due`` references name, from each block's remembered batches."""
    return [
        batch
        for _, block_hash, monitor_id in due
        for batch in batches_of.get(block_hash) or ()
        if batch["monitorId"] == monitor_id
    ]


@dataclass(frozen=True)
class Orphaned:
    """State after a retraction, and the sent batches to follow up as retracted."""

    orphans: list[BlockRef]
    held: list[HeldRef]
    retract: list[MatchBatch]


def orphan(
    orphans: Sequence[BlockRef],
    held: Sequence[HeldRef],
    remembered: Sequence[MatchBatch],
    number: int,
    block_hash: str,
) -> Orphaned:
    """Block ``block_hash`` was orphaned: remember it, drop its held batches unsent, and
    follow up every remembered batch of it as retracted (the notifier retracts only what
    it delivered, so a batch that was held gives nothing)."""
    known = [list(entry) for entry in orphans]
    if not is_orphaned(known, block_hash):
        known.append([number, block_hash])
    kept = [list(entry) for entry in held if entry[1] != block_hash]
    retract: list[MatchBatch] = [{**batch, "retracted": True} for batch in remembered]
    return Orphaned(known, kept, retract)
