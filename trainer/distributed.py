"""Several processes (torchrun): set up, gather embeddings with their gradients, sum gradients.

Every helper is a no-op when torch.distributed is not initialised, so a single process runs the same code.
Each process gathers every process's queries and documents (its own slice keeps its graph) and computes
the loss over the global batch; each process's backward then yields the exact gradient for its own
embeddings, and summing parameter gradients over processes gives the full batch's gradient.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    if not is_distributed():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def init_from_environment() -> int:
    """Join the process group torchrun describes (WORLD_SIZE > 1); returns the local rank (0 alone)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return int(os.environ.get("LOCAL_RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend)
    return local_rank


def gather_with_grad(local: torch.Tensor) -> torch.Tensor:
    """Every process's rows in rank order; the local slice is ``local`` itself, so its gradient flows.

    Processes may hold different numbers of rows (hard negatives per row vary): rows are padded for the
    collective and cut back after.
    """
    if not is_distributed():
        return local
    rank, world = rank_and_world()
    sizes = [torch.zeros(1, dtype=torch.long, device=local.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([local.shape[0]], dtype=torch.long, device=local.device))
    counts = [int(s.item()) for s in sizes]
    padded = torch.zeros((max(counts), *local.shape[1:]), dtype=local.dtype, device=local.device)
    padded[: local.shape[0]] = local.detach()
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    pieces = [local if r == rank else parts[r][: counts[r]] for r in range(world)]
    return torch.cat(pieces)


def sum_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """Add up each parameter's gradient over all processes (the parameters' grads become the global gradient)."""
    if not is_distributed():
        return
    for parameter in parameters:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)


def average_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """Average gradients that every process computed identically (e.g. a learned temperature's)."""
    if not is_distributed():
        return
    world = dist.get_world_size()
    for parameter in parameters:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= world
