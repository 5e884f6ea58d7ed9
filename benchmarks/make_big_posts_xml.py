"""Write a Stack Exchange Posts.xml of a requested size, for showing that a reader's memory stays flat.

    .venv/bin/python benchmarks/make_big_posts_xml.py /tmp/big/Posts.xml --size 1G

Rows are streamed from the demo corpus generator (``demo.formats.stackexchange.write_posts_xml``); the script
prints the size, the row count, the time taken and its own peak memory, which stays flat whatever the size.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo.formats.stackexchange import SITES, write_posts_xml

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """Bytes from a number with an optional K, M or G suffix (powers of 1024)."""
    number, unit = (text[:-1], text[-1].upper()) if text[-1:].upper() in UNITS else (text, "")
    try:
        return int(float(number) * UNITS[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 500000, 200M, 1G)") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="the Posts.xml file to write")
    parser.add_argument("--size", type=parse_size, default=parse_size("1G"), help="target size, e.g. 200M or 1G")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--site", choices=sorted(SITES), default="cooking", help="whose topics the posts are about")
    args = parser.parse_args(argv)
    args.path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    written = write_posts_xml(args.path, args.size, seed=args.seed, site=args.site)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.path}: {written['bytes']:,} bytes, {written['rows']:,} rows in {seconds:.1f} s "
          f"({written['bytes'] / seconds / 1e6:.1f} MB/s); generator peak RSS {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
