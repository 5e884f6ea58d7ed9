"""Teacher and consistency throughput, side by side with a plain SentenceTransformer.encode in the same run.

Measures, on the same texts: the consistency filter's pairs per second (embed both sides + rank every
pair's own document in its chunk); pairmill's Teacher.encode against SentenceTransformer.encode (texts
per second and the ratio); and the search's matrix throughput (TFLOP/s, and its share of the GPU's
peak bf16 dense throughput when CUDA is present).

    .venv/bin/python benchmarks/teacher_speed.py                       # default teacher, CPU
    .venv/bin/python benchmarks/teacher_speed.py --model bert-base --pairs 64 --search-size 2048   # CPU smoke
    .venv/bin/python benchmarks/teacher_speed.py --model bert-base --pairs 50000 --search-size 200000  # GPU

``--model bert-base`` builds a BERT-base-sized sentence-transformers model locally (random weights, the
wordllama tokenizer; no download) in a temporary folder and loads it through pairmill's Teacher.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from mining_realdata import pair_pool

from embedding.models import Teacher
from embedding.search import corpus_chunk_for, topk_search
from filters.consistency import ConsistencyScorer, blockwise_own_document_ranks, default_tie_tolerance, fused_ranks_available
from schemas.recipe import ConsistencyConfig, TeacherConfig
from trainer.model import build_bert_student

H100_SXM_BF16_DENSE_TFLOPS = 989.0


def build_random_bert(folder: Path, hidden: int = 768, layers: int = 12, heads: int = 12, max_seq_length: int = 256, intermediate: int | None = None) -> Path:
    """A BERT-shaped sentence-transformers model (mean pooling) with random weights, saved under ``folder``:
    the trainer's ``build_bert_student`` encoder (seeded), wrapped with its pooling."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    torch.manual_seed(0)
    transformer_dir = build_bert_student(str(folder / "transformer"), hidden, layers, heads, intermediate or 4 * hidden, 512)
    model_dir = folder / "sentence-transformer"
    transformer = Transformer(transformer_dir, max_seq_length=max_seq_length)
    SentenceTransformer(modules=[transformer, Pooling(hidden, "mean")], device="cpu").save(str(model_dir))
    return model_dir


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(device: torch.device, fn, *args, **kwargs) -> tuple[float, object]:
    synchronize(device)
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    synchronize(device)
    return time.perf_counter() - start, result


def pairs_for(count: int) -> list[tuple[str, str]]:
    """``count`` real (query, document) pairs, the realdata sources cycled when more are asked for."""
    pool = pair_pool()
    return [pool[i % len(pool)] for i in range(count)]


def encode_side_by_side(teacher: Teacher, texts: list[str], batch_size: int, default_batch: bool = True) -> dict[str, object]:
    """pairmill's Teacher.encode (length-sorted batches) against SentenceTransformer.encode on the same texts:
    texts per second, the speed-up, and the largest difference between the two embeddings."""
    device = teacher.device
    # Warm-up of both on several batches of real lengths: kernels are chosen, and pinned and device memory cached,
    # per shape the first time one is seen.
    warm = texts[: 8 * batch_size]
    teacher.encode(warm)
    teacher.model.encode(warm, batch_size=batch_size, convert_to_tensor=True)
    ours_s, ours = timed(device, teacher.encode, texts)
    st_s, st = timed(device, teacher.model.encode, texts, batch_size=batch_size, normalize_embeddings=True, convert_to_tensor=True)
    figures: dict[str, object] = {
        "texts": len(texts),
        "pairmill_encode_texts_per_s": round(len(texts) / ours_s),
        "st_encode_texts_per_s": round(len(texts) / st_s),
        "encode_speedup_vs_st": round(st_s / ours_s, 2),
        "max_abs_difference_vs_st": float((ours.float().cpu() - st.float().cpu()).abs().max()),
    }
    if default_batch:
        st_default_s, _ = timed(device, teacher.model.encode, texts, normalize_embeddings=True, convert_to_tensor=True)
        figures.update(
            st_encode_default_batch_texts_per_s=round(len(texts) / st_default_s),
            encode_speedup_vs_st_default_batch=round(st_default_s / ours_s, 2),
        )
    return figures


def consistency_throughput(teacher: Teacher, config: TeacherConfig, pairs: list[tuple[str, str]]) -> dict[str, object]:
    """The consistency filter on ``pairs`` as one chunk (embed both sides, rank every own document): pairs per second."""
    records = [{"id": f"bench/{i:08d}", "dataset": "bench", "query": q, "document": d, "negatives": [], "meta": {}} for i, (q, d) in enumerate(pairs)]
    scorer = ConsistencyScorer(ConsistencyConfig(teacher=config), teacher)
    seconds, verdicts = timed(teacher.device, scorer.check_batch, records)
    return {"consistency_pairs_per_s": round(len(records) / seconds), "consistency_s": round(seconds, 3),
            "consistency_kept_share": round(sum(v is None for v in verdicts) / len(verdicts), 4)}


def search_throughput(device: torch.device, dtype: torch.dtype, dim: int, size: int, peak_tflops: float | None, topk: bool = True) -> dict[str, object]:
    """The consistency rank count (and top-100 search) of ``size`` random queries against ``size`` documents:
    TFLOP/s and, with ``peak_tflops`` (the GPU's dense bf16 peak), the share of it achieved.

    On a GPU the rank count is the fused kernel (filters/consistency_kernels.py): each of its tile shapes is
    timed on a part of the problem first, the fastest then on all of it; the blockwise torch path runs too, for
    its speed and as the reference the fused ranks must equal."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    vectors = torch.nn.functional.normalize(torch.randn(2 * size, dim, generator=generator), dim=1)
    search_queries, search_corpus = (v.to(device=device, dtype=dtype) for v in vectors.split(size))
    flop = 2.0 * size * size * dim
    chunk = corpus_chunk_for(device)
    warm = min(size, 4096)
    blockwise_own_document_ranks(search_queries[:warm], search_corpus[:warm], 4096, chunk)  # warm-up
    blockwise_s, reference = timed(device, blockwise_own_document_ranks, search_queries, search_corpus, 4096, chunk)
    rank_s = blockwise_s
    figures: dict[str, object] = {"search_size": size, "blockwise_rank_tflops": round(flop / blockwise_s / 1e12, 3)}
    if fused_ranks_available(search_queries):
        from filters.consistency_kernels import TILE_CHOICES, fused_own_document_ranks

        own = (search_queries.float() * search_corpus.float()).sum(dim=1)
        tolerance = default_tie_tolerance(dtype)
        part = min(size, 131072)
        part_flop = 2.0 * part * part * dim
        tiles_tflops = {}
        for tiles in TILE_CHOICES:
            fused_own_document_ranks(search_queries[:warm], search_corpus[:warm], own[:warm], tolerance, tiles)  # compile
            seconds, _ = timed(device, fused_own_document_ranks, search_queries[:part], search_corpus[:part], own[:part], tolerance, tiles)
            tiles_tflops[tiles] = part_flop / seconds / 1e12
        best = max(tiles_tflops, key=lambda t: tiles_tflops[t])
        rank_s, (ranks, best_other) = timed(device, fused_own_document_ranks, search_queries, search_corpus, own, tolerance, best)
        figures.update(
            tiles_tflops={"x".join(map(str, t)): round(v, 1) for t, v in tiles_tflops.items()},
            fused_tiles="x".join(map(str, best)),
            blockwise_rank_share_of_peak=round(flop / blockwise_s / 1e12 / peak_tflops, 4) if peak_tflops else None,
            fused_speedup_vs_blockwise=round(blockwise_s / rank_s, 2),
            fused_ranks_equal_share=round(float((ranks == reference.ranks).float().mean()), 6),
            fused_best_other_max_difference=float((best_other - reference.best_other).abs().max()),
        )
    figures.update(consistency_rank_tflops=round(flop / rank_s / 1e12, 3), consistency_rank_queries_per_s=round(size / rank_s))
    if topk:
        topk_s, _ = timed(device, topk_search, search_queries, search_corpus, 100, 4096, chunk)
        figures.update(topk100_tflops=round(flop / topk_s / 1e12, 3), topk100_queries_per_s=round(size / topk_s))
    if device.type == "cuda" and peak_tflops:
        figures.update(gpu=torch.cuda.get_device_name(), peak_tflops=peak_tflops, consistency_rank_share_of_peak=round(flop / rank_s / 1e12 / peak_tflops, 4))
        if topk:
            figures.update(topk100_share_of_peak=round(flop / topk_s / 1e12 / peak_tflops, 4))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="'default' (wordllama static), 'bert-base' (random BERT-base built locally), or a local model path")
    parser.add_argument("--pairs", type=int, default=20000, help="pairs embedded and scored (one consistency chunk)")
    parser.add_argument("--search-size", type=int, default=None, help="queries = documents in the search throughput test (default: --pairs)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"])
    parser.add_argument("--batch-size", type=int, default=256, help="texts per encode batch (transformer models)")
    parser.add_argument("--peak-tflops", type=float, default=H100_SXM_BF16_DENSE_TFLOPS, help="GPU peak dense bf16 TFLOP/s (H100 SXM: 989)")
    parser.add_argument("--bert-hidden", type=int, default=768)
    parser.add_argument("--bert-layers", type=int, default=12)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        model = args.model
        if model == "bert-base":
            model = str(build_random_bert(Path(scratch), args.bert_hidden, args.bert_layers, max(1, args.bert_hidden // 64)))
        config = TeacherConfig(model=model, device=args.device, dtype=args.dtype, batch_size=args.batch_size)
        load_seconds, teacher = timed(torch.device("cpu"), Teacher, config)
        device = teacher.device
        pairs = pairs_for(args.pairs)
        queries, documents = [q for q, _ in pairs], [d for _, d in pairs]
        texts = queries + documents
        figures: dict[str, object] = {
            "model": args.model, "device": str(device), "dtype": str(teacher.dtype), "dim": teacher.dim,
            "pairs": len(pairs), "load_s": round(load_seconds, 2),
        }

        figures.update(encode_side_by_side(teacher, texts, args.batch_size))

        figures.update(consistency_throughput(teacher, config, pairs))

        figures.update(search_throughput(device, teacher.dtype, teacher.dim, args.search_size or args.pairs, args.peak_tflops))
    for key, value in figures.items():
        print(f"{key:40} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
