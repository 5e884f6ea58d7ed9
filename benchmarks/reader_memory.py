"""Peak memory of the Stack Exchange reader as Posts.xml grows: it must stay flat.

Writes generated Posts.xml files of the given sizes (dump format: one ``<row .../>`` per line, HTML
bodies with paragraphs and code), then, each in a fresh child process so its peak RSS is its own:

- ``pairmill``: ``StackExchangeSource.parse`` (title_body) over ``open_input``, every record built;
- ``pairmill-7z``: the same file inside a ``.7z`` site archive (LZMA2 preset 1), streamed out by py7zr;
- ``etree-parse`` (the peer, smallest size only): ``xml.etree.ElementTree.parse`` of the whole file,
  the common way to read a dump, then the same HTML-to-text per question.

Usage: .venv/bin/python benchmarks/reader_memory.py --sizes-mb 100 1000 [--workdir /tmp/reader-bench]
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from xml.sax.saxutils import quoteattr

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORDS = [
    "coffee", "bean", "grind", "roast", "espresso", "water", "temperature", "brew", "filter", "pressure", "crema", "burr", "grinder", "aroma", "acidity",
    "body", "extraction", "kettle", "pour", "over", "french", "press", "milk", "foam", "latte", "cup", "taste", "bitter", "sweet", "fresh", "storage",
    "container", "vacuum", "seal", "humidity", "light", "oxygen", "degas", "days", "weeks", "store", "freezer", "fridge", "airtight", "valve", "bag",
]
ENTITY = {"\n": "&#xA;"}


def _sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(8, 20))
    return " ".join(words).capitalize() + "."


def _body(rng: random.Random) -> str:
    paragraphs = [f"<p>{' '.join(_sentence(rng) for _ in range(rng.randint(2, 5)))}</p>" for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.3:
        code = "\n".join(f"    {rng.choice(WORDS)} = {rng.randint(0, 99)}  # &lt;{rng.choice(WORDS)}&gt;" for _ in range(4))
        paragraphs.insert(1, f"<pre><code>{code}\n</code></pre>")
    return "\n\n".join(paragraphs) + "\n"


def write_posts_xml(path: Path, target_bytes: int, seed: int = 0) -> int:
    """A Posts.xml of about ``target_bytes``: questions each followed by 0-3 answers and a few tag wikis."""
    rng = random.Random(seed)
    written = 0
    post_id = 0
    with open(path, "w", encoding="utf-8") as out:
        written += out.write('\ufeff<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
        while written < target_bytes:
            post_id += 1
            question = post_id
            answers = rng.randint(0, 3)
            accepted = f' AcceptedAnswerId="{question + 1}"' if answers and rng.random() < 0.5 else ""
            title = quoteattr(_sentence(rng)[:80])
            written += out.write(
                f'  <row Id="{question}" PostTypeId="1"{accepted} Score="{rng.randint(-2, 50)}" '
                f"Body={quoteattr(_body(rng), ENTITY)} Title={title} Tags=\"&lt;coffee&gt;\" AnswerCount=\"{answers}\" />\n"
            )
            for _ in range(answers):
                post_id += 1
                written += out.write(
                    f'  <row Id="{post_id}" PostTypeId="2" ParentId="{question}" Score="{rng.randint(-2, 50)}" '
                    f"Body={quoteattr(_body(rng), ENTITY)} />\n"
                )
            if rng.random() < 0.01:
                post_id += 1
                written += out.write(f'  <row Id="{post_id}" PostTypeId="5" Score="0" Body="" />\n')
        written += out.write("</posts>\n")
    return written


def write_7z(posts: Path, archive: Path) -> None:
    import py7zr

    with py7zr.SevenZipFile(archive, "w", filters=[{"id": py7zr.FILTER_LZMA2, "preset": 1}]) as sink:
        sink.write(posts, "Posts.xml")


def child(reader: str, path: str) -> None:
    """Read ``path`` with one reader; print records, seconds and the peak RSS (KiB) before reading began."""
    import resource
    import xml.etree.ElementTree as ET

    from filters.html_text import html_to_text
    from pipelines.sources.stackexchange import StackExchangeSource
    from schemas.recipe import parse_source
    from storage.compressed import open_input

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    records = 0
    if reader == "etree-parse":
        for row in ET.parse(path).getroot():
            if row.get("PostTypeId") == "1" and row.get("Body"):
                records += bool(html_to_text(row.get("Body", "")))
    else:
        spec = parse_source({"dataset": "bench", "kind": "stackexchange", "paths": [path]}, "benchmark")
        source = StackExchangeSource(spec, [path])
        with open_input(path) as stream:
            for item in source.parse(path, stream):
                records += isinstance(item, dict)
    print(records, time.perf_counter() - start, baseline)


def measure(reader: str, path: Path) -> tuple[int, float, float, float]:
    """(records, seconds, peak RSS, peak RSS before reading) of one reader in a fresh process, in MiB."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", reader, str(path)], stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    output = proc.stdout.read() if proc.stdout else ""
    if status != 0:
        raise SystemExit(f"{reader} on {path} failed (status {status})")
    records, seconds, baseline = output.split()
    return int(records), float(seconds), usage.ru_maxrss / 1024, int(baseline) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--workdir", default="/tmp/pairmill-reader-bench")
    parser.add_argument("--child", nargs=2, metavar=("READER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    smallest = min(args.sizes_mb)
    for size_mb in sorted(args.sizes_mb):
        site = work / f"site{size_mb}"
        site.mkdir(exist_ok=True)
        posts = site / "Posts.xml"
        if not posts.exists() or posts.stat().st_size < size_mb * 1_000_000:
            write_posts_xml(posts, size_mb * 1_000_000, seed=size_mb)
        archive = work / f"site{size_mb}.stackexchange.com.7z"
        if not archive.exists():
            write_7z(posts, archive)
        inputs = [("pairmill", posts), ("pairmill-7z", archive)]
        if size_mb == smallest:
            inputs.append(("etree-parse", posts))
        for reader, path in inputs:
            records, seconds, peak, baseline = measure(reader, path)
            mb = posts.stat().st_size / 1e6
            growth = peak - baseline
            rows.append((size_mb, reader, growth))
            print(
                f"{mb:8.0f} MB  {reader:<12} records={records:<9} {seconds:7.1f} s  {mb / seconds:6.1f} MB/s  "
                f"peak RSS {peak:7.1f} MiB (imports {baseline:6.1f} MiB, reading +{growth:7.1f} MiB)",
                flush=True,
            )
    for ours in ("pairmill", "pairmill-7z"):
        growth = {size: g for size, reader, g in rows if reader == ours}
        print(f"memory added by reading ({ours}), by size in MB: " + ", ".join(f"{s}: {g:.1f} MiB" for s, g in sorted(growth.items())))
    peer = next(g for size, reader, g in rows if reader == "etree-parse")
    ours_smallest = next(g for size, reader, g in rows if reader == "pairmill" and size == smallest)
    print(f"memory added by reading at {smallest} MB, etree-parse / pairmill: {peer / max(ours_smallest, 1.0):.0f}x")


if __name__ == "__main__":
    main()
