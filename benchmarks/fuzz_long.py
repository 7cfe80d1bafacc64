"""The fuzzers of tests/engine/test_fuzz_bundle.py, test_fuzz_onnx_import.py and
test_fuzz_loaders.py, run for a long time: mutated bundles, model files, ONNX files, IDX, NPZ,
CSV files and image folders must each load or raise engine.NetBuilderError with a message.
Prints the cases tried per target and every distinct failure (exception type and the line it
came from) with the first case that caused it.

    python benchmarks/fuzz_long.py [--minutes 5] [--targets bundle,model,onnx,idx,npz,csv,images]

Exit status 1 if anything escaped.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "engine"))

import test_fuzz_bundle  # noqa: E402
import test_fuzz_loaders  # noqa: E402
import test_fuzz_onnx_import  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

TARGETS = {"bundle": (test_fuzz_bundle.bundle_cases(), test_fuzz_bundle.check_bundle),
           "model": (test_fuzz_bundle.model_file_cases(), test_fuzz_bundle.check_model),
           "onnx": (test_fuzz_onnx_import.onnx_cases(), test_fuzz_onnx_import.check_onnx),
           **test_fuzz_loaders.TARGETS}


class Tally:
    """Outcomes of one target and the first case of each distinct failure."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.first: dict[str, str] = {}
        self.seconds = 0.0

    @property
    def tried(self) -> int:
        return sum(self.outcomes.values())

    def run(self, case, check) -> None:
        try:
            self.outcomes[check(case)] += 1
        except Exception as exc:  # the bug being hunted: record it and go on
            tb = traceback.extract_tb(exc.__traceback__)[-1]
            key = f"{type(exc).__name__} at {Path(tb.filename).name}:{tb.lineno}"
            self.outcomes["FAILED"] += 1
            self.failures[key] += 1
            if key not in self.first:
                self.first[key] = f"{exc!s:.300}\n      case: {case!r:.600}"
                print(f"  ! {key}: {self.first[key]}", flush=True)


def run_batch(strategy, check, tally: Tally, n: int) -> None:
    @settings(max_examples=n, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def batch(case):
        tally.run(case, check)

    t0 = time.perf_counter()
    batch()
    tally.seconds += time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="total time (default 5)")
    ap.add_argument("--targets", default=",".join(TARGETS),
                    help=f"comma-separated subset of {', '.join(TARGETS)}")
    ap.add_argument("--batch", type=int, default=300, help="cases per hypothesis run")
    args = ap.parse_args(argv)
    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in names if t not in TARGETS]
    if unknown:
        ap.error(f"unknown targets {unknown}; choose from {list(TARGETS)}")
    tallies = {t: Tally() for t in names}
    share = args.minutes * 60 / len(names)
    start = time.perf_counter()
    last_report = start
    print(f"fuzzing {', '.join(names)} for {args.minutes:g} min "
          f"({share:.0f} s each, round robin)", flush=True)
    while True:
        pending = [t for t in names if tallies[t].seconds < share]
        if not pending:
            break
        for t in pending:
            strategy, check = TARGETS[t]
            run_batch(strategy, check, tallies[t], args.batch)
        if time.perf_counter() - last_report > 60:
            last_report = time.perf_counter()
            done = ", ".join(f"{t} {tallies[t].tried:,}" for t in names)
            print(f"[{(last_report - start) / 60:.1f} min] {done}", flush=True)
    print(f"\n{'target':<8} {'cases':>9} {'loaded':>9} {'refused':>9} {'failed':>7} "
          f"{'cases/s':>8}")
    for t in names:
        tl = tallies[t]
        print(f"{t:<8} {tl.tried:>9,} {tl.outcomes['ok']:>9,} {tl.outcomes['refused']:>9,} "
              f"{tl.outcomes['FAILED']:>7,} {tl.tried / max(tl.seconds, 1e-9):>8.0f}")
    total = sum(t.tried for t in tallies.values())
    bad = {f"{t}: {k}": v for t, tl in tallies.items() for k, v in tl.failures.items()}
    print(f"total {total:,} cases in {(time.perf_counter() - start) / 60:.1f} min; "
          f"{len(bad)} distinct failures")
    for k, v in bad.items():
        print(f"  {v:>6} × {k}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
