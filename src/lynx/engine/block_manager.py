"""Paged KV-cache allocator: fixed-size blocks handed to sequences on demand."""

from __future__ import annotations

from collections import deque

from lynx.engine.sequence import Sequence


def blocks_for(num_tokens: int, block_size: int) -> int:
    return -(-num_tokens // block_size)


class BlockManager:
    """Owns the free list of KV blocks; a sequence's blocks are listed in its block table."""

    def __init__(self, num_blocks: int, block_size: int) -> None:
        self.num_blocks, self.block_size = num_blocks, block_size
        self.free: deque[int] = deque(range(num_blocks))

    @property
    def num_free(self) -> int:
        return len(self.free)

    def blocks_needed(self, seq: Sequence) -> int:
        """Extra blocks ``seq`` needs so that all its tokens have a KV slot."""
        return max(0, blocks_for(len(seq), self.block_size) - len(seq.block_table))

    def can_allocate(self, seq: Sequence) -> bool:
        return self.blocks_needed(seq) <= self.num_free

    def allocate(self, seq: Sequence) -> None:
        """Give ``seq`` enough blocks for every token it holds (prefill or decode growth)."""
        need = self.blocks_needed(seq)
        if need > self.num_free:
            raise RuntimeError("allocate() called without can_allocate()")
        for _ in range(need):
            seq.block_table.append(self.free.popleft())

    def free_seq(self, seq: Sequence) -> None:
        self.free.extend(seq.block_table)
        seq.block_table = []
        seq.num_cached_tokens = 0
