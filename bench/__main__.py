"""`python -m bench [--quick | --smoke] [--out DIR]`: run the benchmarks, write the report."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import chart, report
from bench.runner import run_all
from bench.sizes import FULL, QUICK, SMOKE
from harness.process import REPO


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark marketcache side by side with a bare-gRPC floor and Redis.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer repetitions and keys (< 2 min)")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness runs")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write BENCHMARKS.md and results.png here "
        "(default: BENCHMARKS.md at the repository root and bench/results.png)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run, write the report and chart; exit 1 when a section failed."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sizes = SMOKE if args.smoke else QUICK if args.quick else FULL
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr
    )
    if args.out is None:
        markdown, png = REPO / "BENCHMARKS.md", REPO / "bench" / "results.png"
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        markdown, png = args.out / "BENCHMARKS.md", args.out / "results.png"
    workdir = Path(tempfile.mkdtemp(prefix="marketcache-bench-"))
    started = time.monotonic()
    try:
        run = asyncio.run(run_all(sizes, workdir, strict=args.smoke))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    run.results.conditions["duration"] = f"{time.monotonic() - started:.0f} s for the whole run"
    markdown.write_text(report.render(run.results))
    chart.draw(run.results, png)
    logging.getLogger("bench").info("wrote %s and %s", markdown, png)
    for failure in run.failures:
        print(f"section failed: {failure}", file=sys.stderr)
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
