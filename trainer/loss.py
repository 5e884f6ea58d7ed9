"""InfoNCE over in-batch and hard negatives (optionally over Matryoshka prefixes), and GradCache so that a
large batch fits in memory.

GradCache (Gao et al. 2021): embed the batch in chunks without a graph, compute the loss on the detached
embeddings to get the gradient of the loss with respect to every embedding, then re-embed each chunk with
its graph and back-propagate that cached gradient. Peak memory is one chunk's activations, and the
parameter gradients equal those of the plain loss on the whole batch. The Matryoshka loss is a function of
the full embeddings like any other, so GradCache caches its gradient unchanged.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from trainer.distributed import gather_with_grad

# A learned temperature is kept above this (CLIP clamps its logit scale at 100 the same way).
MIN_TEMPERATURE = 0.01


class Temperature(torch.nn.Module):
    """The InfoNCE temperature, fixed or learned (as the log of its inverse, like CLIP's logit scale)."""

    def __init__(self, initial: float, learned: bool) -> None:
        super().__init__()
        self.log_inverse = torch.nn.Parameter(torch.tensor(math.log(1.0 / initial)), requires_grad=learned)

    def forward(self) -> torch.Tensor:
        return torch.exp(-self.log_inverse).clamp(min=MIN_TEMPERATURE)


def _info_nce(q: torch.Tensor, d: torch.Tensor, n: torch.Tensor | None, temperature: torch.Tensor, symmetric: bool) -> torch.Tensor:
    """InfoNCE on gathered float embeddings, each normalised here."""
    q, d = F.normalize(q, dim=1), F.normalize(d, dim=1)
    candidates = d if n is None else torch.cat([d, F.normalize(n, dim=1)])
    labels = torch.arange(q.shape[0], device=q.device)
    loss = F.cross_entropy(q @ candidates.T / temperature, labels)
    if symmetric:
        loss = (loss + F.cross_entropy(d @ q.T / temperature, labels)) / 2
    return loss


def info_nce(
    queries: torch.Tensor,
    documents: torch.Tensor,
    negatives: torch.Tensor | None,
    temperature: torch.Tensor,
    symmetric: bool = False,
    matryoshka: Sequence[tuple[int, float]] = (),
) -> torch.Tensor:
    """Mean cross-entropy of each query against every document and hard negative of the global batch.

    Row i's positive is document i. With ``symmetric``, the document-to-query term is averaged in.
    Under torch.distributed, every process's rows are gathered first (see trainer.distributed).
    With ``matryoshka`` ((dimension, weight) pairs), the loss is the weighted sum of this loss over each
    embedding prefix of that many dimensions, re-normalised (Kusupati et al. 2022); the rows are gathered once.
    """
    q, d = gather_with_grad(queries.float()), gather_with_grad(documents.float())
    n = None if negatives is None else gather_with_grad(negatives.float())
    if not matryoshka:
        return _info_nce(q, d, n, temperature, symmetric)
    terms = [
        weight * _info_nce(q[:, :dim], d[:, :dim], None if n is None else n[:, :dim], temperature, symmetric)
        for dim, weight in matryoshka
    ]
    return torch.stack(terms).sum()


Embed = Callable[[dict], torch.Tensor]
Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def _embed_side(embed: Embed, chunks: list[dict]) -> torch.Tensor | None:
    return torch.cat([embed(chunk) for chunk in chunks]) if chunks else None


def plain_backward(embed: Embed, sides: list[list[dict]], loss_fn: Loss) -> torch.Tensor:
    """Embed every side with its graph, compute the loss, back-propagate; returns the detached loss."""
    queries, documents, negatives = (_embed_side(embed, chunks) for chunks in sides)
    assert queries is not None and documents is not None, "only the negatives side may be empty"
    loss = loss_fn(queries, documents, negatives)
    loss.backward()
    return loss.detach()


class _RandomState:
    """The torch RNG state before a chunk's first forward, so the re-forward draws the same dropout masks."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


def grad_cache_backward(embed: Embed, sides: list[list[dict]], loss_fn: Loss, device: torch.device) -> torch.Tensor:
    """GradCache: the same parameter gradients as ``plain_backward``, one chunk's activations at a time.

    ``sides`` is [query chunks, document chunks, negative chunks] (the last may be empty); each chunk is a
    features dict that ``embed`` turns into embeddings.
    """
    states: list[list[_RandomState]] = []
    cached: list[torch.Tensor | None] = []
    with torch.no_grad():
        for chunks in sides:
            side_states, outputs = [], []
            for chunk in chunks:
                side_states.append(_RandomState(device))
                outputs.append(embed(chunk))
            states.append(side_states)
            cached.append(torch.cat(outputs).detach().requires_grad_() if outputs else None)
    queries, documents, negatives = cached
    assert queries is not None and documents is not None, "only the negatives side may be empty"
    loss = loss_fn(queries, documents, negatives)
    loss.backward()
    end_state = _RandomState(device)
    for chunks, side_states, embeddings in zip(sides, states, cached, strict=True):
        if embeddings is None:  # an empty side: no chunks to re-embed
            continue
        cached_gradient = embeddings.grad
        assert cached_gradient is not None, "loss.backward() reached every embedding the loss was computed from"
        start = 0
        for chunk, state in zip(chunks, side_states, strict=True):
            state.restore()
            output = embed(chunk)
            gradient = cached_gradient[start : start + output.shape[0]]
            output.backward(gradient=gradient.to(output.dtype))
            start += output.shape[0]
    end_state.restore()
    return loss.detach()
