"""The consistency rank count fused into the matrix product, as one Triton kernel for CUDA GPUs.

``filters.consistency.own_document_ranks`` counts, for every pair of a chunk, the documents that score above
its own document. Done with torch ops, each (query batch x corpus chunk) block of scores is written to memory
and read back by every comparison, so the count is bound by memory traffic, not by the matrix product: about
a tenth of a GPU's bf16 peak. Here each program multiplies a tile of queries by a tile of documents on the
tensor cores and folds the tile straight into three per-row figures, without writing a score anywhere:

- ``above``: documents j != i scoring above the own score + tolerance;
- ``tied_earlier``: documents j < i scoring within the tolerance of the own score;
- ``best``: the best score of any document j != i.

Scores are rounded to the inputs' dtype before they are compared, as the torch path's block is, so both paths
give the same ranks. The grid is (query tiles, column splits); each split writes its own row of partial
figures, summed (and maxed) by torch afterwards, so the result does not depend on the order programs run in.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import triton
import triton.language as tl


class Tiles(NamedTuple):
    """One program's share of the work (a BLOCK_M x BLOCK_N tile of scores, BLOCK_K wide steps) and its launch."""

    block_m: int
    block_n: int
    block_k: int
    num_warps: int
    num_stages: int


# The tile shapes benchmarks/gpu_suite.py times against each other; the first is the one used.
TILE_CHOICES = (
    Tiles(128, 128, 64, 8, 3),
    Tiles(128, 256, 64, 8, 3),
    Tiles(256, 128, 64, 8, 3),
    Tiles(128, 128, 64, 4, 4),
    Tiles(64, 256, 64, 4, 3),
)
# The tile the column splits are sized for, and the programs per multiprocessor they aim for when a chunk
# has too few query tiles to fill the GPU.
NOMINAL_BLOCK = 128
PROGRAMS_PER_SM = 4


@triton.jit
def own_rank_kernel(
    q_ptr, d_ptr, own_ptr, above_ptr, tied_ptr, best_ptr,
    n, dim, stride_q, stride_d, tolerance, columns_per_split,
    ROUND: tl.constexpr, PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    tile = tl.program_id(0)
    split = tl.program_id(1)
    rows = tile * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < n
    row_offsets = rows.to(tl.int64)[:, None] * stride_q
    own = tl.load(own_ptr + rows, mask=row_ok, other=0.0)
    high = own[:, None] + tolerance
    low = own[:, None] - tolerance
    above = tl.zeros([BLOCK_M], dtype=tl.int32)
    tied = tl.zeros([BLOCK_M], dtype=tl.int32)
    best = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    first = split * columns_per_split
    last = tl.minimum(first + columns_per_split, n)
    for start in range(first, last, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        col_ok = cols < last
        col_offsets = cols.to(tl.int64)[:, None] * stride_d
        scores = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
        for k in range(0, dim, BLOCK_K):
            ks = k + tl.arange(0, BLOCK_K)
            k_ok = ks < dim
            a = tl.load(q_ptr + row_offsets + ks[None, :], mask=row_ok[:, None] & k_ok[None, :], other=0.0)
            b = tl.load(d_ptr + col_offsets + ks[None, :], mask=col_ok[:, None] & k_ok[None, :], other=0.0)
            scores = tl.dot(a, tl.trans(b), scores, input_precision=PRECISION)
        if ROUND:
            scores = scores.to(q_ptr.dtype.element_ty).to(tl.float32)
        valid = row_ok[:, None] & col_ok[None, :] & (rows[:, None] != cols[None, :])
        above += tl.sum((valid & (scores > high)).to(tl.int32), axis=1)
        tied += tl.sum((valid & (scores >= low) & (scores <= high) & (cols[None, :] < rows[:, None])).to(tl.int32), axis=1)
        best = tl.maximum(best, tl.max(tl.where(valid, scores, float("-inf")), axis=1))
    out = split * n + rows
    tl.store(above_ptr + out, above, mask=row_ok)
    tl.store(tied_ptr + out, tied, mask=row_ok)
    tl.store(best_ptr + out, best, mask=row_ok)


def column_splits(n: int, multiprocessors: int) -> int:
    """Column splits that give the GPU about ``PROGRAMS_PER_SM`` programs per multiprocessor (1 for a large chunk)."""
    tiles = math.ceil(n / NOMINAL_BLOCK)
    return max(1, min(tiles, (PROGRAMS_PER_SM * multiprocessors) // max(1, tiles)))


def fused_own_document_ranks(
    queries: torch.Tensor,
    documents: torch.Tensor,
    own: torch.Tensor,
    tolerance: float,
    tiles: Tiles = TILE_CHOICES[0],
    splits: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ranks int64, best other score float32) of pair i = (query row i, document row i), as
    ``own_document_ranks`` defines them; ``own`` is each pair's own score (float32); ``splits`` column splits
    (default ``column_splits`` for the GPU)."""
    n, dim = queries.shape
    queries, documents = queries.contiguous(), documents.contiguous()
    if splits is None:
        multiprocessors = torch.cuda.get_device_properties(queries.device).multi_processor_count if queries.is_cuda else 1
        splits = column_splits(n, multiprocessors)
    columns_per_split = math.ceil(math.ceil(n / splits) / NOMINAL_BLOCK) * NOMINAL_BLOCK
    splits = math.ceil(n / columns_per_split) if n else 1
    above = torch.empty((splits, n), dtype=torch.int32, device=queries.device)
    tied = torch.empty_like(above)
    best = torch.empty((splits, n), dtype=torch.float32, device=queries.device)
    if n:
        own_rank_kernel[(triton.cdiv(n, tiles.block_m), splits)](
            queries, documents, own.contiguous(), above, tied, best,
            n, dim, queries.stride(0), documents.stride(0), float(tolerance), columns_per_split,
            # Scores rounded to a 16-bit input dtype, as torch's block is; float32 products in full precision (no TF32).
            ROUND=queries.dtype != torch.float32, PRECISION="ieee" if queries.dtype == torch.float32 else "tf32",
            BLOCK_M=tiles.block_m, BLOCK_N=tiles.block_n, BLOCK_K=tiles.block_k, num_warps=tiles.num_warps, num_stages=tiles.num_stages,
        )
    ranks = above.sum(dim=0, dtype=torch.int64) + tied.sum(dim=0, dtype=torch.int64)
    return ranks, best.amax(dim=0) if n else torch.empty(0, dtype=torch.float32, device=queries.device)
