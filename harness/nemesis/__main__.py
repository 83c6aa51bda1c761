"""`python -m harness.nemesis`: random faults against three caches (what `make nemesis` runs)."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import logging
import os
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from harness.nemesis.cluster import PG_ADMIN_DSN
from harness.nemesis.report import write_section
from harness.nemesis.runner import run

ALL_DATABASES = "sqlite,postgresql"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=600.0, help="total, split over databases")
    parser.add_argument("--databases", default=ALL_DATABASES)
    parser.add_argument("--each-once", action="store_true", help="every fault class once")
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--faults",
        default=os.environ.get("NEMESIS_FAULTS", ""),
        help="only these fault classes, comma-separated (default: $NEMESIS_FAULTS, else all)",
    )
    parser.add_argument("--pg-admin-dsn", default=PG_ADMIN_DSN)
    parser.add_argument("--json", type=Path, help="write every round's result here")
    parser.add_argument("--reliability", type=Path, help="write the table into this RELIABILITY.md")
    parser.add_argument(
        "--workdir", type=Path, help="keep the nodes' logs here (default: a temporary directory)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    databases = [d for d in args.databases.split(",") if d]
    faults = [f.strip() for f in args.faults.split(",") if f.strip()] or None
    # SIGTERM (a CI job's end, `kill`) stops a run as Ctrl-C does: asyncio cancels the
    # rounds, and their cleanup stops the nodes, unmounts the small disk, removes the
    # namespaces. Left to its default it ended the runner alone, its nodes running on.
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    # A run that hangs dumps every thread's stack and exits, instead of hanging a CI job.
    faulthandler.dump_traceback_later(args.seconds + 300.0 * len(databases) + 300.0, exit=True)
    began = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="nemesis-") as tmp:
        workdir = args.workdir or Path(tmp)
        for dialect in databases:
            results += asyncio.run(
                run(
                    dialect,
                    workdir / dialect,
                    seconds=args.seconds / len(databases),
                    each_once=args.each_once,
                    seed=args.seed,
                    pg_admin_dsn=args.pg_admin_dsn,
                    faults=faults,
                )
            )
    took = time.monotonic() - began
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    if args.reliability and (faults or args.databases != ALL_DATABASES):
        # The table stands for a whole run: a narrowed one would replace it with a part.
        print(f"a narrowed run (--faults, --databases): {args.reliability} left as it was")
    elif args.reliability:
        write_section(args.reliability, results, took)
    bad = [r for r in results if r.lost or r.stale or r.problems]
    for r in bad:
        print(
            f"VIOLATION {r.fault} on {r.database} ({r.victim}): {r.problems[:5]}", file=sys.stderr
        )
    print(f"{len(results)} rounds in {took:.0f}s, {len(bad)} with violations")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
