"""pairmill's trainer side by side with sentence-transformers' own trainer (CachedMultipleNegativesRankingLoss).

Both train the same student on the same datasets (built from the real-format samples in ../shared/realdata:
Quora duplicates, AG News title -> description, Amazon review summary -> text), with the same batch size,
steps, learning-rate schedule, temperature (scale 1/0.02) and prefixes, one dataset per batch drawn in
proportion to size. Both are scored by the same code on pairmill's held-out split (never trained on):
nDCG@10 before and after, and training throughput in pairs per second (tokens per second and peak memory too),
with where pairmill's step time goes (data, tokenize, model forward and backward, optimizer). On a shared
machine, ``--rounds N`` alternates the two trainers N times and reports the median of the rounds' ratios.

  .venv/bin/python benchmarks/trainer_vs_st.py --steps 300 --batch-size 64          # CPU, default student
  .venv/bin/python benchmarks/trainer_vs_st.py --steps 300 --batch-size 64 --rounds 3 --st-threads 1
  .venv/bin/python benchmarks/trainer_vs_st.py --model bert-small --steps 10 --batch-size 32 --chunk-size 8
  # GPU: a BERT-base-sized student (random weights, built locally), batch 4096 through GradCache
  .venv/bin/python benchmarks/trainer_vs_st.py --model bert-base --batch-size 4096 --chunk-size 256 --steps 20
"""
from __future__ import annotations

import argparse
import csv
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import yaml  # noqa: E402

from tests.helpers import write_dataset  # noqa: E402
from text.hashing import in_fraction  # noqa: E402
from trainer.config import load_train_config  # noqa: E402
from trainer.data import open_training_sets  # noqa: E402
from trainer.evaluate import evaluate, held_out_set  # noqa: E402
from trainer.model import Encoder, build_bert_student, load_student, resolve_device, torch_threads  # noqa: E402
from trainer.runlog import read_metrics  # noqa: E402
from trainer.train import run_training  # noqa: E402

PHASES = ("data", "tokenize", "model", "optimizer")

# name: (hidden size, layers, heads, intermediate size, max tokens)
BERT_SIZES = {"bert-base": (768, 12, 12, 3072, 512), "bert-small": (128, 2, 2, 512, 128)}


def quora_pairs(realdata: Path, limit: int) -> list[dict[str, Any]]:
    path = realdata / "quora" / "quora_duplicate_questions_first2000.tsv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["is_duplicate"] == "1"]
    return [_record("quora", r["id"], r["question1"], r["question2"]) for r in rows[:limit]]


def ag_news_pairs(realdata: Path, limit: int) -> list[dict[str, Any]]:
    path = realdata / "news" / "ag_news_test.csv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [_record("ag_news", f"ag_news_test.csv:{i + 2}", r["title"], r["description"].replace("\\", " ")) for i, r in enumerate(rows[:limit])]


def amazon_pairs(realdata: Path, limit: int) -> list[dict[str, Any]]:
    path = realdata / "amazon_reviews" / "AMAZON_FASHION_5.json"
    records, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            key = (r.get("summary", ""), r.get("reviewText", ""))
            if not all(key) or key in seen:  # the file repeats each review once per product style
                continue
            seen.add(key)
            records.append(_record("amazon_reviews", f"{r['asin']}/{r['reviewerID']}/{r['unixReviewTime']}", *key))
    return records[:limit]


def _record(dataset: str, key: str, query: str, document: str) -> dict[str, Any]:
    return {"id": f"{dataset}/{key}", "dataset": dataset, "query": query.strip(), "document": document.strip(), "negatives": [], "meta": {}}


def generated_pairs(limit: int) -> list[list[dict[str, Any]]]:
    """Three datasets of generated pairs (benchmarks/mining_realdata.pair_pool) where the real samples are absent."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from mining_realdata import pair_pool

    pool = pair_pool(ROOT / "no-realdata", generated=3 * limit)
    names = ["quora", "ag_news", "amazon_reviews"]
    return [[_record(name, str(i), q, d) for i, (q, d) in enumerate(pool[n * limit : (n + 1) * limit])] for n, name in enumerate(names)]


def build_datasets(realdata: Path, out: Path, limit: int) -> list[int]:
    """The three training datasets under ``out``: real-format samples from ``realdata``, generated pairs where it is absent."""
    sizes = []
    sources = (quora_pairs(realdata, limit), ag_news_pairs(realdata, limit), amazon_pairs(realdata, limit)) if realdata.is_dir() else generated_pairs(limit)
    for pairs in sources:
        name = pairs[0]["dataset"]
        write_dataset(out / name, name, pairs, per_shard=1000)
        sizes.append(len(pairs))
    return sizes


def train_config(args: argparse.Namespace, work: Path, student: str, max_tokens: int, run: str = "pairmill-run") -> str:
    """pairmill's config for the run folder ``work/run`` on the datasets in ``work/data``; returns its path."""
    config = {
        "output": str(work / run),
        "datasets": [str(work / "data")],
        "data": {"held_out_fraction": args.held_out, "max_query_tokens": min(128, max_tokens), "max_document_tokens": max_tokens, "shuffle_buffer": 5000},
        "model": {"student": student, "device": args.device, "cpu_threads": args.cpu_threads},
        "loss": {"temperature": 0.02, "chunk_size": args.chunk_size},
        "optimizer": {"lr": args.lr, "weight_decay": 0.0, "warmup_steps": args.warmup, "schedule": "cosine"},
        "training": {"steps": args.steps, "batch_size": args.batch_size, "checkpoint_every": args.steps, "keep_checkpoints": 1, "seed": 0},
        "evaluation": {"every": None, "max_queries": 1000, "batch_size": 256},
    }
    path = work / f"{run}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_pairmill(config_path: str) -> dict[str, Any]:
    run_dir = run_training(config_path)
    batch_size = load_train_config(config_path).training.batch_size
    rows = read_metrics(run_dir)
    steps = [r for r in rows if "loss" in r][1:]  # the first step pays one-off warm-up costs
    step_seconds = sum(batch_size / r["pairs_per_s"] for r in steps)
    cpu_seconds = sum(r["cpu_s"] for r in steps)
    evals = [r for r in rows if "eval" in r]
    last = max(r["step"] for r in evals)
    return {
        "pairs_per_s": len(steps) * batch_size / step_seconds,
        "pairs_per_cpu_s": len(steps) * batch_size / cpu_seconds,
        "tokens_per_s": sum(r["tokens_per_s"] for r in steps) / len(steps),
        "phase_ms": {phase: 1000 * sum(r[f"{phase}_s"] for r in steps) / len(steps) for phase in PHASES},
        "before": {r["eval"]: r["ndcg@10"] for r in evals if r["step"] == 0},
        "after": {r["eval"]: r["ndcg@10"] for r in evals if r["step"] == last},
        "run_dir": run_dir,
    }


def run_sentence_transformers(config_path: str, work: Path, max_tokens: int, threads: int | None = None) -> dict[str, Any]:
    """The same run through SentenceTransformerTrainer and CachedMultipleNegativesRankingLoss (``threads``: torch's, None leaves them)."""
    from datasets import Dataset, DatasetDict
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.training_args import MultiDatasetBatchSamplers
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss, MultipleNegativesRankingLoss

    config = load_train_config(config_path)
    sets = open_training_sets(config.datasets, config.data, config.training.batch_size, config_path)
    device = resolve_device(config.model.device, 0)
    model = load_student(config.model.student, device, "model.student")
    if model.max_seq_length is not None and model.max_seq_length != float("inf"):
        model.max_seq_length = max_tokens
    train = {}
    for s in sets:
        rows = [(s.prefixes.query + r["query"], s.prefixes.document + r["document"]) for r in _training_records(s.path, config.data.held_out_fraction)]
        train[s.name] = Dataset.from_dict({"anchor": [a for a, _ in rows], "positive": [p for _, p in rows]})
    if Encoder(model, device, None).static is not None:
        # sentence-transformers refuses the cached loss for a StaticEmbedding (its inputs cannot be split into
        # mini-batches); its uncached loss is the same InfoNCE.
        loss = MultipleNegativesRankingLoss(model, scale=1 / config.loss.temperature)
    else:
        loss = CachedMultipleNegativesRankingLoss(
            model, scale=1 / config.loss.temperature, mini_batch_size=config.loss.chunk_size or config.training.batch_size
        )
    arguments = SentenceTransformerTrainingArguments(
        output_dir=str(work / "st-run"),
        max_steps=config.training.steps,
        per_device_train_batch_size=config.training.batch_size,
        learning_rate=config.optimizer.lr,
        warmup_steps=config.optimizer.warmup_steps,
        lr_scheduler_type="cosine",
        weight_decay=0.0,
        max_grad_norm=config.optimizer.max_grad_norm,
        bf16=device.type == "cuda" and torch.cuda.is_bf16_supported(),
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.PROPORTIONAL,
        dataloader_drop_last=True,
        save_strategy="no",
        logging_steps=max(1, config.training.steps // 10),
        report_to="none",
        seed=config.training.seed,
        use_cpu=device.type == "cpu",
        disable_tqdm=not sys.stderr.isatty(),
    )
    trainer = SentenceTransformerTrainer(model=model, args=arguments, train_dataset=DatasetDict(train), loss=loss)
    with torch_threads(threads):
        started, cpu_started = time.perf_counter(), time.process_time()
        trainer.train()
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    encoder = Encoder(model, device, None)
    after = {}
    for s in sets:
        retrieval = held_out_set(s, config.data.held_out_fraction, config.evaluation.max_queries)
        metrics = evaluate(encoder, retrieval, config.data.max_query_tokens, config.data.max_document_tokens, config.evaluation.batch_size)
        after[retrieval.name] = metrics["ndcg@10"]
    pairs = config.training.steps * config.training.batch_size
    return {"pairs_per_s": pairs / seconds, "pairs_per_cpu_s": pairs / cpu_seconds, "loss": type(loss).__name__, "after": after}


def _training_records(path: str, fraction: float) -> list[dict[str, Any]]:
    from storage.builds import iter_records

    return [r for r in iter_records(path) if not in_fraction(r["id"], fraction)]


def mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values)


def report_pairmill(ours: dict[str, Any], memory: float) -> None:
    print(
        f"pairmill: {ours['pairs_per_s']:.1f} pairs/s ({ours['pairs_per_cpu_s']:.1f} per CPU-second), "
        f"{ours['tokens_per_s']:.0f} tokens/s, peak memory {memory:.0f} MiB"
    )
    step_ms = sum(ours["phase_ms"].values())
    print(f"  step {step_ms:.1f} ms: " + ", ".join(f"{phase} {ms:.1f} ms ({100 * ms / step_ms:.0f}%)" for phase, ms in ours["phase_ms"].items()))
    print(f"  held-out nDCG@10 before {mean(ours['before']):.4f} after {mean(ours['after']):.4f}")
    for name in sorted(ours["before"]):
        print(f"    {name}: {ours['before'][name]:.4f} -> {ours['after'][name]:.4f}")


def report_sentence_transformers(theirs: dict[str, Any], memory: float) -> None:
    print(
        f"sentence-transformers ({theirs['loss']}): {theirs['pairs_per_s']:.1f} pairs/s ({theirs['pairs_per_cpu_s']:.1f} per CPU-second), "
        f"peak memory {memory:.0f} MiB (CPU: process peak so far)"
    )
    print(f"  held-out nDCG@10 after {mean(theirs['after']):.4f}")
    for name in sorted(theirs["after"]):
        print(f"    {name}: {theirs['after'][name]:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--realdata", type=Path, default=ROOT.parent / "shared" / "realdata")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument(
        "--model",
        choices=["default", *BERT_SIZES],
        default="default",
        help="student: the wordllama StaticEmbedding, or a randomly initialised BERT built locally",
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk-size", type=int, help="GradCache chunk (both trainers); default: the whole batch at once")
    parser.add_argument("--lr", type=float, help="peak learning rate (default 0.003 for the static student, 1e-4 for BERT)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--held-out", type=float, default=0.1, help="share of each dataset held out for evaluation")
    parser.add_argument("--pairs-per-source", type=int, default=8000)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--cpu-threads", type=int, help="pairmill's model.cpu_threads (default: the trainer's own choice)")
    parser.add_argument("--st-threads", type=int, help="torch's threads while sentence-transformers trains (default: torch's default)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the two trainers this many times; the summary is the median ratio")
    parser.add_argument("--skip-st", action="store_true", help="run pairmill only (e.g. the batch-4096 GPU memory check)")
    args = parser.parse_args()
    if args.lr is None:
        args.lr = 0.003 if args.model == "default" else 1e-4
    work = args.work or Path(tempfile.mkdtemp(prefix="trainer-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    sizes = build_datasets(args.realdata, work / "data", args.pairs_per_source)
    student, max_tokens = "default", 256
    if args.model in BERT_SIZES:
        hidden, layers, heads, intermediate, max_tokens = BERT_SIZES[args.model]
        student = build_bert_student(str(work / args.model), hidden, layers, heads, intermediate, max_tokens)
    print(f"datasets quora/ag_news/amazon_reviews: {sizes} pairs; student {args.model}; batch {args.batch_size}; steps {args.steps}; chunk {args.chunk_size}")
    device = resolve_device(args.device, 0)
    ratios: list[tuple[float, float, float]] = []
    for round_index in range(args.rounds):
        if args.rounds > 1:
            print(f"round {round_index + 1} of {args.rounds}")
        config_path = train_config(args, work, student, max_tokens, run=f"pairmill-run-{round_index}" if args.rounds > 1 else "pairmill-run")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        ours = run_pairmill(config_path)
        report_pairmill(ours, peak_memory_mib(device))
        if args.skip_st:
            continue
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        theirs = run_sentence_transformers(config_path, work, max_tokens, args.st_threads)
        report_sentence_transformers(theirs, peak_memory_mib(device))
        ratios.append(
            (ours["pairs_per_s"] / theirs["pairs_per_s"], ours["pairs_per_cpu_s"] / theirs["pairs_per_cpu_s"], mean(ours["after"]) / mean(theirs["after"]))
        )
        throughput, per_cpu, ndcg = ratios[-1]
        print(f"ratio pairmill / sentence-transformers: throughput {throughput:.2f}x (per CPU-second {per_cpu:.2f}x), nDCG@10 {ndcg:.3f}")
    if len(ratios) > 1:
        throughputs = ", ".join(f"{r[0]:.2f}" for r in ratios)
        print(
            f"median over {len(ratios)} rounds: throughput {statistics.median(r[0] for r in ratios):.2f}x ({throughputs}), "
            f"per CPU-second {statistics.median(r[1] for r in ratios):.2f}x, nDCG@10 {statistics.median(r[2] for r in ratios):.3f}"
        )


if __name__ == "__main__":
    main()
