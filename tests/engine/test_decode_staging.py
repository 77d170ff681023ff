"""Host staging of a CUDA-graph decode step and the device-side input ids / live rows.

The graphs only run on CUDA; this checks on the CPU the two pieces they are made of: what
:func:`stage_decode_inputs` writes into the static buffers' host mirrors, and what
:meth:`ModelRunner.input_ids` makes of them (pending tokens gathered from the previous
step's rows, rows whose pending token is a stop id dropped), exactly as the graph does.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from lynx.engine.cuda_graphs import stage_decode_inputs
from lynx.engine.model_runner import ModelRunner
from lynx.engine.sampling_params import SamplingParams
from lynx.engine.sequence import PENDING, STOP_SLOTS, Sequence


def seq(seq_id: int, tokens: list[int], table: list[int], pending: bool) -> Sequence:
    s = Sequence(seq_id, f"r{seq_id}", list(tokens), 2, SamplingParams(max_tokens=50), seed=0)
    s.block_table = list(table)
    if pending:
        s.token_ids.append(PENDING)
        s.num_pending = 1
    return s


def test_staging_and_device_ids_mark_pending_and_stopped_rows():
    bmax, bucket, width, bs, trash = 8, 4, 3, 4, 99
    a = seq(0, [1, 2, 3, 4, 5], [7, 3], pending=False)  # last token 5 known on the host
    b = seq(1, [1, 2, 3, 4, 5, 6], [2, 9], pending=True)  # its 7th token is in last_tokens[2]
    c = seq(2, [1, 2, 3], [4], pending=True)  # its 4th token is in last_tokens[0]
    np64 = np.full((4 + STOP_SLOTS) * bmax, 123, dtype=np.int64)  # stale values from an earlier step
    np32 = np.full(bmax * (1 + width), 77, dtype=np.int32)
    stage_decode_inputs([a, b, c], [-1, 2, 0], [[], [8, 9], [42]], np64, np32, bmax, bucket, width, bs, trash)

    ids, pos, slots, src = np64[: 4 * bmax].reshape(4, bmax)
    stops = np64[4 * bmax :].reshape(bmax, STOP_SLOTS)
    ctx_lens, tables = np32[:bmax], np32[bmax:].reshape(bmax, width)
    assert ids[:bucket].tolist() == [5, 0, 0, 0]  # pending ids come from the device
    assert pos[:bucket].tolist() == [4, 6, 3, 0]
    assert slots[:bucket].tolist() == [3 * 4 + 0, 9 * 4 + 2, 4 * 4 + 3, trash]
    assert ctx_lens[:bucket].tolist() == [5, 7, 4, 1]
    assert tables[0, :2].tolist() == [7, 3] and tables[1, :2].tolist() == [2, 9] and tables[3, 0] == 0
    assert src[:bucket].tolist() == [-1, 2, 0, -1]
    assert stops[0].tolist() == [-1] * STOP_SLOTS
    assert stops[1, :2].tolist() == [8, 9] and stops[2, :1].tolist() == [42]
    assert (stops[1, 2:] == -1).all() and (stops[3] == -1).all()  # no stale stop ids on padding

    # The graph's first operations, on views of the device copy of these buffers.
    dev64 = torch.from_numpy(np64)
    host_ids, _, _, src_rows = dev64[: 4 * bmax].view(4, bmax)
    stop_ids = dev64[4 * bmax :].view(bmax, STOP_SLOTS)
    valid = torch.tensor([True, True, True, False])  # the bucket's padding row is invalid
    runner = SimpleNamespace(last_tokens=torch.tensor([42, 11, 17, 0, 0, 0, 0, 0]))
    got_ids, live = ModelRunner.input_ids(runner, host_ids[:bucket], src_rows[:bucket], stop_ids[:bucket], valid)
    assert got_ids.tolist() == [5, 17, 42, 0]
    assert live.tolist() == [True, True, False, False]  # c's pending token 42 is one of its stop ids


def test_staging_without_overlap_has_no_pending_rows():
    bmax, width = 4, 2
    np64 = np.zeros((4 + STOP_SLOTS) * bmax, dtype=np.int64)
    np32 = np.zeros(bmax * (1 + width), dtype=np.int32)
    s = seq(0, [3, 4, 5], [1], pending=False)
    stage_decode_inputs([s], None, None, np64, np32, bmax, 1, width, 4, 50)
    assert np64[3 * bmax] == -1  # source row: the host knows the token
    assert (np64[4 * bmax :][:STOP_SLOTS] == -1).all()
