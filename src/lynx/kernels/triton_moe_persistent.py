"""One-launch fused-MoE decode kernel (``TritonMoEConfig(persistent=True)``, the default up to 16 tokens).

The two-launch path (:mod:`lynx.kernels.triton_moe_gemm`, the default above 16 tokens) runs
gate_up then down. Here one grid of ``G`` programs runs both phases with the two launches'
work split (so that the two can be timed against each other). Phase A is the gate_up grid ``(gm1, n_tiles1)``
as virtual programs ``v = m * n_tiles1 + n``, phase B the down grid ``(gm2, n_tiles2)``;
program ``p`` runs virtual programs ``p, p + G, ...`` of phase A, then those of phase B. The
host makes ``G`` cover each virtual grid (one virtual program per program) or sets that
phase's ``gm`` to 1 (every block in M class 0: e.g. ``G = 1`` in the interpreter), so a
program's M class is ``p // n_tiles`` in both cases and one private block table per phase
serves all its virtual programs. The tile bodies are the two kernels' own
(:func:`gate_up_tile`, :func:`down_tile`); the metadata is derived once for both phases.

``TOKEN_ROWS`` (``TritonMoEConfig.token_rows``, opt-in ``LYNX_MOE_TOKEN_ROWS=1``, T <= BLOCK_M):
no sorted blocks and no tables. Block ``b`` is the ``b``-th active expert (one histogram and
one scan per program) and its row ``t`` is token ``t``'s pair with that expert, found by
comparing the token's ``k`` ids (:func:`~lynx.kernels.triton_moe_token_rows.token_row_hits`). A
token that lists an expert twice (no policy does) has its first pair computed and the down
tile stores the same row again with the other pair's weight.

Cross-program protocol, all counters in a zeroed int32 workspace that each call leaves zero:

* after a gate_up tile of block ``b``: CTA barrier (every thread's ``inter`` stores issued),
  then ``ready[b] += 1`` with release semantics at GPU scope;
* before a down tile of block ``b``: spin until an acquire read of ``ready[b]`` reaches
  ``n_tiles1`` (all gate_up columns of the block written), then read the block's ``inter``
  rows with ``.cg`` (from L2, where the other SMs' stores are);
* after its down blocks each phase-B program bumps ``sum_count[n2]`` (acq_rel); the one that
  completes tile ``n2`` (``gm2`` arrivals) runs the k-sum of that tile (:func:`_sum_tile`) and
  resets its counter -- per program rather than per block, so that a call whose pairs are
  all dropped (no block at all) still writes its zero output, as the down kernel does;
* at the end every program bumps an exit counter; the last one zeroes ``ready[]`` and the
  exit counter (every other program is past its last counter access by then).

Deadlock freedom needs every program resident at once: a program spinning in phase B waits
for gate_up tiles of other programs; if one of those had not been scheduled yet because the
SMs are full of spinning programs, it never would be. The host therefore keeps ``G`` at
most one wave (``ctas_per_sm * SMs``) and checks, from the compiled kernel's registers and
shared memory, that ``ctas_per_sm`` CTAs fit on an SM
(:func:`lynx.kernels.triton_moe_persistent_host.persistent_launch`). Other work on the GPU only delays residency (it finishes and
frees its SMs); a partitioned GPU (MPS limits, green contexts) with fewer SMs than queried
could still deadlock. The interpreter runs programs one after another, so it runs ``G = 1``.
The workspace is the top of the device's shared counter buffer
(``triton_moe_persistent_host.persistent_workspace``): persistent calls must not run concurrently on two streams, as for
skinny_gemm's split-K counters.
"""

from __future__ import annotations

import triton
import triton.language as tl

from lynx.kernels.pdl_triton import pdl_enter
from lynx.kernels.triton_moe_align import sorted_slots
from lynx.kernels.triton_moe_gemm import _block, _sum_tile, down_acc, down_tile, gate_up_tile, store_weighted
from lynx.kernels.triton_moe_token_rows import active_experts, token_row_first, token_row_hits, token_row_pairs


@triton.jit
def _scatter_mine(table_ptr, pair, expert, kept, slot, pid_m, grid_m, BLOCK_M: tl.constexpr,
                  LOCAL_BLOCKS: tl.constexpr):
    """Blocks ``pid_m, pid_m + grid_m, ...`` into a private table (layout of ``program_blocks``)."""
    block = slot // BLOCK_M
    mine = kept & (block % grid_m == pid_m)
    local = block // grid_m
    tl.store(table_ptr + LOCAL_BLOCKS + local * BLOCK_M + slot % BLOCK_M, pair, mask=mine)
    tl.store(table_ptr + local, expert, mask=mine & (slot % BLOCK_M == 0))


@triton.jit(do_not_specialize=["num_pairs", "num_tokens", "gm1", "gm2"])
def moe_persistent_kernel(
    x_ptr, w13_ptr, w2_ptr,  # [T, H], [E, 2I, H], [E, H, I]; unit stride along the last dim
    inter_ptr,  # [P, I] model dtype scratch
    pair_out_ptr,  # [P, H] float32 scratch
    out_ptr,  # [T, H] model dtype out
    ids_ptr, weights_ptr,  # [P] routing ids / float32 weights
    table_ptr,  # [G, (LOCAL1 + LOCAL2) * (1 + BLOCK_M)] int32 scratch, private per program
    ws_ptr,  # zeroed int32 workspace: exit[1] | sum_count[N_TILES2] | ready[max_blocks]; left zero
    num_pairs, num_tokens,
    stride_x, stride_w13e, stride_w13n, stride_w2e, stride_w2n, stride_inter, stride_out,
    gm1, gm2,  # M extents of the two phases' virtual grids
    H: tl.constexpr, I: tl.constexpr, TOP_K: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N1: tl.constexpr, BLOCK_K1: tl.constexpr,
    BLOCK_N2: tl.constexpr, BLOCK_K2: tl.constexpr, DOT_PRECISION: tl.constexpr,
    NUM_EXPERTS: tl.constexpr, E_POW2: tl.constexpr, P_POW2: tl.constexpr,
    LOCAL1: tl.constexpr, LOCAL2: tl.constexpr, BLOCK_T: tl.constexpr,
    RESET: tl.constexpr,
    PHASES: tl.constexpr,  # 3: the real kernel; 1 / 2: gate_up / down+exit only (interpreter tests, no waits)
    TOKEN_ROWS: tl.constexpr = False,  # one block per active expert, row t = token t (T <= BLOCK_M): no sort
    KP: tl.constexpr = 1,  # TOKEN_ROWS: next power of two >= TOP_K
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    pdl_enter(PDL)  # before any read of what earlier kernels write
    N_TILES1: tl.constexpr = (I + BLOCK_N1 - 1) // BLOCK_N1
    N_TILES2: tl.constexpr = (H + BLOCK_N2 - 1) // BLOCK_N2
    pid = tl.program_id(0)
    exit_ptr = ws_ptr
    sum_ptr = ws_ptr + 1
    ready_ptr = sum_ptr + N_TILES2
    table1_ptr = table_ptr + pid * ((LOCAL1 + LOCAL2) * (1 + BLOCK_M))
    table2_ptr = table1_ptr + LOCAL1 * (1 + BLOCK_M)
    num_programs = tl.num_programs(0)
    # this program's M class in each phase: one virtual program (m, n) each if G covers the
    # virtual grid, else gm = 1 (host rule) and it takes N tiles pid, pid + G, ... of class 0
    m1 = pid // N_TILES1
    m2 = pid // N_TILES2

    if TOKEN_ROWS:  # block b = the b-th active expert; each block derives its rows (no tables)
        rank, active, num_blocks = active_experts(ids_ptr, weights_ptr, num_pairs, NUM_EXPERTS, E_POW2, P_POW2)
    else:  # block metadata once for both phases (program_blocks' steps, two private tables)
        s1 = tl.arange(0, LOCAL1 * BLOCK_M)
        tl.store(table1_ptr + LOCAL1 + s1, tl.zeros([LOCAL1 * BLOCK_M], tl.int32) + num_pairs)  # padding rows
        s2 = tl.arange(0, LOCAL2 * BLOCK_M)
        tl.store(table2_ptr + LOCAL2 + s2, tl.zeros([LOCAL2 * BLOCK_M], tl.int32) + num_pairs)
        pair, expert, kept, slot, num_blocks = sorted_slots(
            ids_ptr, weights_ptr, num_pairs, NUM_EXPERTS, E_POW2, BLOCK_M, P_POW2)
        tl.debug_barrier()  # the scatters overwrite some of those sentinels (other threads)
        _scatter_mine(table1_ptr, pair, expert, kept, slot, m1, gm1, BLOCK_M, LOCAL1)
        _scatter_mine(table2_ptr, pair, expert, kept, slot, m2, gm2, BLOCK_M, LOCAL2)
        tl.debug_barrier()  # the loops read the tables back (other threads' stores)

    # phase A: gate_up tiles; each publishes its block's progress
    if PHASES % 2 == 1:
        for v in range(pid, gm1 * N_TILES1, num_programs):
            offs_n = (v % N_TILES1) * BLOCK_N1 + tl.arange(0, BLOCK_N1)  # [BN1] columns of I
            for block in range(m1, num_blocks, gm1):
                if TOKEN_ROWS:
                    expert_b, hit, pairs, rounds = token_row_hits(ids_ptr, weights_ptr, rank, active, block,
                                                                  num_tokens, NUM_EXPERTS, E_POW2, TOP_K, KP,
                                                                  BLOCK_M)
                    # a token's first pair with the expert (a repeated id reuses it: see phase B)
                    gate_up_tile(x_ptr, w13_ptr, inter_ptr, expert_b, token_row_first(hit, pairs, num_pairs),
                                 num_pairs, offs_n, offs_n < I, tl.arange(0, BLOCK_K1), stride_x, stride_w13e,
                                 stride_w13n, stride_inter, H, I, TOP_K, BLOCK_M, BLOCK_N1, BLOCK_K1, DOT_PRECISION)
                else:
                    expert_b, pair_b = _block(table1_ptr, table1_ptr, table1_ptr, block, gm1, True, BLOCK_M, LOCAL1)
                    gate_up_tile(x_ptr, w13_ptr, inter_ptr, expert_b, pair_b, num_pairs, offs_n, offs_n < I,
                                 tl.arange(0, BLOCK_K1), stride_x, stride_w13e, stride_w13n, stride_inter,
                                 H, I, TOP_K, BLOCK_M, BLOCK_N1, BLOCK_K1, DOT_PRECISION)
                tl.debug_barrier()  # every thread's inter stores precede the release
                tl.atomic_add(ready_ptr + block, 1, sem="release", scope="gpu")

    # phase B: down tiles once their block's gate_up columns are all written; then the k-sum
    if PHASES >= 2:
        for v in range(pid, gm2 * N_TILES2, num_programs):
            n2 = v % N_TILES2
            offs_n = n2 * BLOCK_N2 + tl.arange(0, BLOCK_N2)  # [BN2] columns of H
            n_ok = offs_n < H
            for block in range(m2, num_blocks, gm2):
                if TOKEN_ROWS:
                    expert_b, hit, pairs, rounds = token_row_hits(ids_ptr, weights_ptr, rank, active, block,
                                                                  num_tokens, NUM_EXPERTS, E_POW2, TOP_K, KP,
                                                                  BLOCK_M)
                    while tl.atomic_add(ready_ptr + block, 0, sem="acquire", scope="gpu") < N_TILES1:
                        pass
                    first = token_row_first(hit, pairs, num_pairs)
                    acc = down_acc(inter_ptr, w2_ptr, expert_b, first, num_pairs, offs_n, n_ok,
                                   tl.arange(0, BLOCK_K2), stride_inter, stride_w2e, stride_w2n,
                                   I, BLOCK_M, BLOCK_N2, BLOCK_K2, DOT_PRECISION, ".cg")
                    store_weighted(acc, weights_ptr, pair_out_ptr, first, num_pairs, offs_n, n_ok, stride_out)
                    if rounds > 1:  # a token routed to the expert again (no policy does): same row, its weight
                        for rnd in tl.static_range(1, KP):
                            store_weighted(acc, weights_ptr, pair_out_ptr, token_row_pairs(hit, pairs, rnd, num_pairs),
                                           num_pairs, offs_n, n_ok, stride_out)
                else:
                    expert_b, pair_b = _block(table2_ptr, table2_ptr, table2_ptr, block, gm2, True, BLOCK_M, LOCAL2)
                    while tl.atomic_add(ready_ptr + block, 0, sem="acquire", scope="gpu") < N_TILES1:
                        pass
                    down_tile(inter_ptr, w2_ptr, weights_ptr, pair_out_ptr, expert_b, pair_b, num_pairs, offs_n,
                              n_ok, tl.arange(0, BLOCK_K2), stride_inter, stride_w2e, stride_w2n, stride_out,
                              I, BLOCK_M, BLOCK_N2, BLOCK_K2, DOT_PRECISION, ".cg")
            tl.debug_barrier()  # every thread's pair_out stores precede the release
            done = tl.atomic_add(sum_ptr + n2, 1, sem="acq_rel", scope="gpu")
            if done == gm2 - 1:  # last of this N tile's gm2 arrivals: all its pair rows are written
                _sum_tile(pair_out_ptr, weights_ptr, out_ptr, num_tokens, offs_n, n_ok, stride_out,
                          H, TOP_K, BLOCK_T, BLOCK_N2)
                tl.store(sum_ptr + n2, 0)  # no other program touches it again in this call

        # exit: the last program leaves the workspace zero for the next call
        tl.debug_barrier()
        if tl.atomic_add(exit_ptr, 1, sem="acq_rel", scope="gpu") == num_programs - 1:
            for b0 in range(0, num_blocks, RESET):
                b = b0 + tl.arange(0, RESET)
                tl.store(ready_ptr + b, tl.zeros([RESET], tl.int32), mask=b < num_blocks)
            tl.store(exit_ptr, 0)


def workspace_slots(max_blocks: int, n_tiles2: int) -> int:
    """int32 counters one call uses: ``exit | sum_count[n_tiles2] | ready[max_blocks]``."""
    return 1 + n_tiles2 + max_blocks


def reset_block(max_blocks: int) -> int:
    """Counters the exiting program zeroes per store."""
    return min(1024, triton.next_power_of_2(max_blocks))
