"""In-place writes by memory block: what makes a write through a view or a detached tensor
invalidate a value another tensor of the same memory saved for backward.

A tensor's ``_version`` counts the writes made through that tensor. A view (``x[:2]``,
``x.T``, ``x.reshape(...)``), ``x.detach()`` and the tensor itself share one array's memory,
so a write through any of them changes what a node saved through another: PyTorch counts
versions per storage for that reason. Here every in-place write also records, for the array
that owns the written memory (the end of its ``.base`` chain, its *block*), the number of the
write (``WRITES.count``); a node remembers the count when it was recorded and, when a write
has happened since, backward checks the blocks of what it saved. Every change of a tensor's
``_version`` is such a write too, so a node recorded (or checked) at the current count has
nothing to check.
"""

from __future__ import annotations

import weakref

_PRUNE_AT = 1024  # blocks remembered before those no longer alive are dropped


class Writes:
    """The number of in-place writes so far and, per block (by id), the number of its last one."""

    __slots__ = ("count", "blocks")

    def __init__(self) -> None:
        self.count = 0
        self.blocks: dict = {}  # id(block) -> [weak reference to the block or None, count at its last write]


WRITES = Writes()


def block_of(array):
    """The object that owns ``array``'s memory: the end of its chain of ``.base`` (itself if none)."""
    base = getattr(array, "base", None)
    while base is not None:
        array = base
        base = getattr(array, "base", None)
    return array


def note_write(array) -> None:
    """Record an in-place write into ``array``'s memory."""
    WRITES.count += 1
    _mark(block_of(array), WRITES.count)


def note_writes(arrays) -> None:
    """Record in-place writes into each of ``arrays`` (an optimizer's update of its parameters),
    all under one write number: each is after every node recorded before them."""
    if not arrays:
        return
    WRITES.count += 1
    count = WRITES.count
    blocks = WRITES.blocks
    for array in arrays:
        block = array if array.base is None else block_of(array)
        entry = blocks.get(id(block))
        if entry is not None and entry[0] is not None and entry[0]() is block:
            entry[1] = count  # _mark's usual case, inlined: the same parameters every step
        else:
            _mark(block, count)


def marks_of(arrays) -> list:
    """The records of ``arrays``' blocks, written now (``note_writes``): ``note_marked`` writes them
    again without looking them up, while the arrays live (a live block's record stays the same)."""
    note_writes(arrays)
    return [WRITES.blocks[id(block_of(array))] for array in arrays]


def note_marked(marks: list) -> None:
    """``note_writes`` of the arrays whose records ``marks_of`` gave, all under one write number."""
    WRITES.count += 1
    count = WRITES.count
    for entry in marks:
        entry[1] = count


def _mark(block, count: int) -> None:
    """``block`` was written by write number ``count``."""
    blocks = WRITES.blocks
    entry = blocks.get(id(block))
    if entry is not None and entry[0] is not None and entry[0]() is block:
        entry[1] = count  # the block seen before (a parameter, every step): no new weak reference
        return
    try:
        ref = weakref.ref(block)
    except TypeError:  # a block that takes no weak reference (bytes): matched by id alone
        ref = None
    blocks[id(block)] = [ref, count]
    if len(blocks) > _PRUNE_AT:
        for key in [k for k, (r, _) in blocks.items() if r is None or r() is None]:
            del blocks[key]


def written_since(array, count: int) -> bool:
    """Whether ``array``'s memory was written in place after write number ``count``."""
    block = block_of(array)
    entry = WRITES.blocks.get(id(block))
    if entry is None or entry[1] <= count:
        return False
    ref = entry[0]
    return ref is None or ref() is block
