"""Continuous-batching scheduler: each step is either a prefill batch or a decode batch.

Prefill and decode never mix, so a decode-only step is exactly the memory-bound
iteration in which batch-aware routing applies (method.md, phase awareness). Requests
join at any step; when the KV cache runs out, the most recently admitted running
request is preempted (its blocks freed, to be recomputed later) so the others proceed.
"""

from __future__ import annotations

from collections import deque

from lynx.engine.block_manager import BlockManager, blocks_for
from lynx.engine.sequence import Sequence, SequenceStatus


class Scheduler:
    """Decides which sequences run in the next step, and in which phase."""

    def __init__(self, block_manager: BlockManager, max_num_seqs: int, max_num_batched_tokens: int,
                 max_model_len: int | None = None) -> None:
        self.blocks = block_manager
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.max_model_len = max_model_len
        self.waiting: deque[Sequence] = deque()
        self.running: deque[Sequence] = deque()
        self.num_preemptions = 0
        # Sequences that outgrew the whole KV cache: no preemption can make room, so the
        # engine ends them (finish reason "length") instead of recomputing them forever.
        self.out_of_cache: list[Sequence] = []

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def schedule(self) -> tuple[list[Sequence], bool]:
        """The next batch and whether it is a prefill batch. Empty when nothing can run."""
        # A sequence whose in-flight token is certainly its last is finished in all but name:
        # its KV is never read again, so its blocks and its seat go to others now, exactly as
        # if it had been collected (the in-flight step's writes precede any reuse on the stream).
        held = [s for s in self.running if self._done_once_resolved(s)]
        for seq in held:
            self.blocks.free_seq(seq)
        batch = self._schedule_prefill(len(held))
        if batch:
            return batch, True
        return self._schedule_decode(held), False

    def _schedule_prefill(self, num_held: int) -> list[Sequence]:
        batch: list[Sequence] = []
        tokens = 0
        while self.waiting and len(self.running) - num_held + len(batch) < self.max_num_seqs:
            seq = self.waiting[0]
            if tokens + len(seq) > self.max_num_batched_tokens or not self.blocks.can_allocate(seq):
                break
            self.waiting.popleft()
            self.blocks.allocate(seq)
            seq.status = SequenceStatus.RUNNING
            tokens += len(seq)
            batch.append(seq)
        self.running.extend(batch)
        return batch

    def _done_once_resolved(self, seq: Sequence) -> bool:
        """Whether ``seq``'s pending token is certainly its last (a length limit): with
        overlapped decode it must not be scheduled again, it finishes when that resolves."""
        if not seq.num_pending:
            return False
        full = self.max_model_len is not None and len(seq) >= self.max_model_len
        return full or seq.num_scheduled_outputs >= seq.params.max_tokens

    def _schedule_decode(self, held: list[Sequence]) -> list[Sequence]:
        # Sequences finishing with their in-flight token (``held``) have nothing to decode and
        # no blocks any more (see schedule): never a batch member nor a preemption victim.
        if held:
            gone = {id(s) for s in held}
            self.running = deque(s for s in self.running if id(s) not in gone)
        batch: list[Sequence] = []
        while self.running and len(batch) < self.max_num_seqs:
            seq = self.running.popleft()
            if blocks_for(len(seq), self.blocks.block_size) > self.blocks.num_blocks:
                self.out_of_cache.append(seq)
                continue
            while not self.blocks.can_allocate(seq):
                if self.running:
                    self._preempt(self.running.pop())  # newest first: oldest keep progressing
                else:
                    self._preempt(seq)
                    break
            else:
                self.blocks.allocate(seq)
                batch.append(seq)
        self.running.extendleft(reversed(batch))
        self.running.extend(held)
        return batch

    def _preempt(self, seq: Sequence) -> None:
        """Free ``seq``'s cache; it re-enters the queue first and is recomputed (prompt + output)."""
        self.blocks.free_seq(seq)
        seq.status = SequenceStatus.WAITING
        seq.num_preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(seq)

    def finish(self, seq: Sequence) -> None:
        """Free a finished sequence; it may be running or (preempted while its last decode
        step was in flight) waiting."""
        self.blocks.free_seq(seq)
        seq.status = SequenceStatus.FINISHED
        for queue in (self.running, self.waiting):
            if seq in queue:
                queue.remove(seq)

    def abort(self, request_id: str) -> Sequence | None:
        for queue in (self.waiting, self.running):
            for seq in queue:
                if seq.request_id == request_id:
                    queue.remove(seq)
                    self.blocks.free_seq(seq)
                    seq.status = SequenceStatus.FINISHED
                    seq.finish_reason = "abort"
                    seq.drop_pending()
                    return seq
        return None
