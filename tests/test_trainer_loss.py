"""InfoNCE values (and its Matryoshka sum), GradCache's gradients against the plain loss's, the static student's
sparse gradient made dense, and the gather across two processes."""
from __future__ import annotations

import math
import os

import pytest
import torch

from trainer.distributed import gather_with_grad, sum_gradients
from trainer.loss import Temperature, grad_cache_backward, info_nce, plain_backward


class TinyEncoder(torch.nn.Module):
    """Mean of token embeddings through a linear layer with dropout: small, random where GradCache must care."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(50, 16)
        self.linear = torch.nn.Linear(16, 8)
        self.dropout = torch.nn.Dropout(0.2)

    def forward(self, features: dict) -> torch.Tensor:
        return self.linear(self.dropout(self.embedding(features["ids"]).mean(dim=1)))


def _chunks(ids: torch.Tensor, size: int) -> list[dict]:
    return [{"ids": ids[i : i + size]} for i in range(0, ids.shape[0], size)]


def _gradients(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


def test_info_nce_matches_a_hand_computation():
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    d = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    n = torch.tensor([[0.0, -1.0]])
    t = torch.tensor(0.5)
    s2 = 1 / math.sqrt(2)
    # cosine similarities: q0 -> [1, s2, 0], q1 -> [0, s2, -1]
    expected = (
        -math.log(math.exp(1 / 0.5) / (math.exp(1 / 0.5) + math.exp(s2 / 0.5) + 1))
        - math.log(math.exp(s2 / 0.5) / (1 + math.exp(s2 / 0.5) + math.exp(-1 / 0.5)))
    ) / 2
    assert info_nce(q, d, n, t).item() == pytest.approx(expected, rel=1e-6)
    backward = (
        -math.log(math.exp(1 / 0.5) / (math.exp(1 / 0.5) + 1))
        - math.log(math.exp(s2 / 0.5) / (math.exp(s2 / 0.5) + math.exp(s2 / 0.5)))
    ) / 2
    assert info_nce(q, d, n, t, symmetric=True).item() == pytest.approx((expected + backward) / 2, rel=1e-6)


def test_temperature_is_fixed_or_learned():
    fixed, learned = Temperature(0.02, learned=False), Temperature(0.05, learned=True)
    assert fixed().item() == pytest.approx(0.02)
    assert not fixed.log_inverse.requires_grad
    assert learned().item() == pytest.approx(0.05)
    info_nce(torch.randn(4, 3), torch.randn(4, 3), None, learned()).backward()
    assert learned.log_inverse.grad is not None and learned.log_inverse.grad.abs() > 0


MATRYOSHKA = ((8, 1.0), (4, 0.5), (2, 0.25))


def test_matryoshka_loss_is_the_weighted_sum_over_renormalised_prefixes():
    torch.manual_seed(0)
    q, d, n, t = torch.randn(5, 8), torch.randn(5, 8), torch.randn(3, 8), torch.tensor(0.1)
    expected = sum(w * info_nce(q[:, :k], d[:, :k], n[:, :k], t, symmetric=True) for k, w in MATRYOSHKA)
    assert info_nce(q, d, n, t, symmetric=True, matryoshka=MATRYOSHKA).item() == pytest.approx(expected.item(), rel=1e-6)
    assert info_nce(q, d, None, t, matryoshka=((8, 1.0),)).item() == pytest.approx(info_nce(q, d, None, t).item(), rel=1e-6)


@pytest.mark.parametrize("matryoshka", [(), MATRYOSHKA], ids=["full", "matryoshka"])
@pytest.mark.parametrize("chunk_size", [1, 3, 5])
@pytest.mark.parametrize("symmetric", [False, True])
def test_grad_cache_gradients_equal_the_plain_loss(chunk_size, symmetric, matryoshka):
    torch.manual_seed(0)
    model = TinyEncoder()
    temperature = Temperature(0.05, learned=True)
    queries, documents, negatives = torch.randint(0, 50, (7, 5)), torch.randint(0, 50, (7, 9)), torch.randint(0, 50, (11, 9))

    def loss_fn(q, d, n):
        return info_nce(q, d, n, temperature(), symmetric, matryoshka)

    def run(cached: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        temperature.zero_grad()
        torch.manual_seed(1)
        if cached:
            sides = [_chunks(queries, chunk_size), _chunks(documents, chunk_size), _chunks(negatives, chunk_size)]
            loss = grad_cache_backward(model, sides, loss_fn, torch.device("cpu"))
        else:
            loss = plain_backward(model, [[{"ids": queries}], [{"ids": documents}], [{"ids": negatives}]], loss_fn)
        return loss, [*_gradients(model), temperature.log_inverse.grad.clone()]

    plain_loss, plain_grads = run(cached=False)
    cached_loss, cached_grads = run(cached=True)
    assert cached_loss.item() == pytest.approx(plain_loss.item(), rel=1e-6)
    for plain, cached in zip(plain_grads, cached_grads, strict=True):
        assert torch.allclose(plain, cached, atol=1e-6, rtol=1e-5)


def test_grad_cache_on_the_default_student_without_negatives():
    from trainer.model import Encoder, load_student

    model = load_student("default", torch.device("cpu"), "model.student")
    encoder = Encoder(model, torch.device("cpu"), None)
    texts_q = [f"how do I brew coffee number {i}" for i in range(6)]
    texts_d = [f"grind beans and pour water at {90 + i} degrees" for i in range(6)]

    def loss_fn(q, d, n):
        assert n is None
        return info_nce(q, d, n, torch.tensor(0.02))

    weight = model[0].embedding.weight
    weight.grad = None
    plain_backward(encoder.embed, [[encoder.features(texts_q, 32)], [encoder.features(texts_d, 32)], []], loss_fn)
    plain = weight.grad.clone()
    weight.grad = None
    sides = [[encoder.features(texts_q[i : i + 4], 32) for i in (0, 4)], [encoder.features(texts_d[i : i + 4], 32) for i in (0, 4)], []]
    grad_cache_backward(encoder.embed, sides, loss_fn, torch.device("cpu"))
    assert plain.abs().sum() > 0
    assert torch.allclose(plain, weight.grad, atol=1e-7)


def test_static_gradient_is_the_dense_gradient_step_after_step():
    """The sparse backward written into the kept buffer equals the dense backward's gradient, with no rows left from the step before."""
    import copy

    from trainer.model import Encoder, StaticGradient, load_student

    cpu = torch.device("cpu")
    dense_model = load_student("default", cpu, "model.student")
    sparse_model = copy.deepcopy(dense_model)
    dense, sparse = Encoder(dense_model, cpu, None), Encoder(sparse_model, cpu, None)
    static_gradient = StaticGradient(sparse.static)

    def loss_fn(q, d, n):
        return info_nce(q, d, n, torch.tensor(0.02))

    steps = [
        ([f"how do I brew coffee number {i}" for i in range(6)], [f"grind beans and pour water at {90 + i} degrees" for i in range(6)], None),
        (["zebra stripes", "quantum tunnelling", "medieval castles"], ["why zebras have stripes", "particles crossing barriers", "stone walls and moats"], 2),
    ]
    for queries, documents, chunk in steps:
        grads = []
        for encoder in (dense, sparse):
            size = chunk or len(queries)
            sides = [[encoder.features(texts[i : i + size], 32) for i in range(0, len(texts), size)] for texts in (queries, documents)]
            weight = encoder.static.embedding.weight
            weight.grad = None
            if chunk:
                grad_cache_backward(encoder.embed, [*sides, []], loss_fn, cpu)
            else:
                plain_backward(encoder.embed, [*sides, []], loss_fn)
            if encoder is sparse:
                assert weight.grad.is_sparse
                static_gradient.densify()
            grads.append(weight.grad)
        assert not grads[1].is_sparse and grads[1] is static_gradient.buffer
        assert torch.allclose(grads[0], grads[1], atol=1e-7)
        assert grads[0].abs().sum() > 0


def test_static_gradient_clears_the_whole_buffer_after_an_all_reduce(monkeypatch):
    """Under torch.distributed the all-reduce adds other processes' rows to the buffer, so the next step clears all of it."""
    import trainer.model
    from trainer.model import Encoder, StaticGradient, load_student

    cpu = torch.device("cpu")
    encoder = Encoder(load_student("default", cpu, "model.student"), cpu, None)
    static_gradient = StaticGradient(encoder.static)
    weight = encoder.static.embedding.weight
    monkeypatch.setattr(trainer.model, "is_distributed", lambda: True)

    def step(texts: list[str]) -> torch.Tensor:
        weight.grad = None
        encoder.embed(encoder.features(texts, 32)).sum().backward()
        static_gradient.densify()
        return weight.grad

    step(["first step"])
    static_gradient.buffer[7] = 1.0  # a row another process's gradient added in the all-reduce
    grad = step(["second step"])
    assert grad[7].abs().sum() == 0 and grad.abs().sum() > 0


def test_gather_and_gradient_sum_are_no_ops_in_one_process():
    x = torch.randn(3, 4, requires_grad=True)
    assert gather_with_grad(x) is x
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.full((2,), 3.0)
    sum_gradients([p])
    assert p.grad.tolist() == [3.0, 3.0]


def _seeded_batch() -> tuple[TinyEncoder, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same model (dropout off) and global batch in every process: seeded, so each rank and the check agree."""
    torch.manual_seed(0)
    model = TinyEncoder()
    model.dropout.p = 0.0
    queries, documents = torch.randint(0, 50, (8, 5)), torch.randint(0, 50, (8, 9))
    return model, queries, documents, torch.randint(0, 50, (5, 9))


def _distributed_worker(rank: int, world: int, rendezvous: str, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    for variant, matryoshka in enumerate(((), MATRYOSHKA)):
        model, queries, documents, negatives = _seeded_batch()
        rows = slice(rank * 4, (rank + 1) * 4)
        local_negatives = negatives[:2] if rank == 0 else negatives[2:]  # uneven: 2 and 3 rows

        def loss_fn(q, d, n, matryoshka=matryoshka):
            return info_nce(q, d, n, torch.tensor(0.05), matryoshka=matryoshka)

        loss = plain_backward(model, [[{"ids": queries[rows]}], [{"ids": documents[rows]}], [{"ids": local_negatives}]], loss_fn)
        sum_gradients(list(model.parameters()))
        torch.save({"loss": loss, "grads": _gradients(model)}, os.path.join(out_dir, f"rank{rank}-{variant}.pt"))
    dist.destroy_process_group()


def test_two_processes_gather_global_negatives_and_get_the_full_batch_gradient(tmp_path):
    """Also with the Matryoshka loss: each prefix's negatives are every process's."""
    import torch.multiprocessing as mp

    mp.spawn(_distributed_worker, args=(2, str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=2, join=True)
    for variant, matryoshka in enumerate(((), MATRYOSHKA)):
        model, queries, documents, negatives = _seeded_batch()
        loss = info_nce(model({"ids": queries}), model({"ids": documents}), model({"ids": negatives}), torch.tensor(0.05), matryoshka=matryoshka)
        loss.backward()
        expected = _gradients(model)
        for rank in range(2):
            result = torch.load(tmp_path / f"rank{rank}-{variant}.pt")
            assert result["loss"].item() == pytest.approx(loss.item(), rel=1e-6)
            for got, want in zip(result["grads"], expected, strict=True):
                assert torch.allclose(got, want, atol=1e-6)
