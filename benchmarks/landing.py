"""Landing files: peak memory and seconds to parse a schedule batch, before and after
bounded input, side by side.

    python benchmarks/landing.py            # 1x, 10x, 100x a night; header widths
    python benchmarks/landing.py --big      # and 1000x: a 47 MB flights file (slow before)

"reference" is the parser as it was (benchmarks/_landing_reference.py: the file read
whole, every row kept as a list of strings, a quadratic header check); "bounded" is
`nightscore.validation.parse_batch` with the default limits. Each parse runs in a fresh
process, so its peak RSS (VmHWM) is its own; "+MB" is the peak above the process's RSS
just before the parse (Python, pandas and nightscore imported).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

DAY = date(2013, 4, 2)
HERE = Path(__file__).resolve().parent


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(mode: str, flights: str, weather: str) -> None:
    """Parse one batch in this process and print seconds and memory as JSON."""
    import pandas  # noqa: F401  (imported before the baseline, as in a task)

    from nightscore.contract import FLIGHTS, WEATHER
    from nightscore.validation import parse_batch
    from nightscore.validation.parsing import InputLimits

    sys.path.insert(0, str(HERE))
    import _landing_reference as reference

    base = _rss_mb("VmRSS")
    started = time.perf_counter()
    if mode == "reference":
        parts = {
            "flights": reference.parse_part(FLIGHTS, Path(flights).read_bytes()),
            "weather": reference.parse_part(WEATHER, Path(weather).read_bytes()),
        }
        ok = all(p.frame is not None for p in parts.values())
        rows = parts["flights"].rows
        why = "" if ok else parts["flights"].problems[0].description
    else:
        from nightscore.config import load_settings

        limits = InputLimits.from_settings(load_settings())
        parsed = parse_batch("schedule", {"flights": flights, "weather": weather}, limits)
        ok = parsed.frames is not None
        rows = parsed.parts["flights"].rows
        problems = [p for part in parsed.parts.values() for p in part.problems]
        why = problems[0].description if problems else ""
    seconds = time.perf_counter() - started
    peak = _rss_mb("VmHWM")
    print(
        json.dumps(
            {"s": seconds, "peak": peak, "delta": peak - base, "ok": ok, "rows": rows, "why": why}
        )
    )


def header_child(mode: str, width: int) -> None:
    sys.path.insert(0, str(HERE))
    import _landing_reference as reference

    from nightscore.contract import FLIGHTS
    from nightscore.validation import parsing

    header = [f"c{i}" for i in range(width)]
    check = reference._header_problems if mode == "reference" else parsing._header_problems
    started = time.perf_counter()
    check(FLIGHTS, header)
    print(json.dumps({"s": time.perf_counter() - started}))


def run(*args: str, repeat: int = 1) -> dict:
    """The child's figures; with `repeat`, the median seconds and the highest peak."""
    results = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, *args], capture_output=True, text=True, check=True
        ).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    result = dict(results[0])
    result["s"] = statistics.median(r["s"] for r in results)
    for key in ("peak", "delta"):
        if key in result:
            result[key] = max(r[key] for r in results)
    return result


def write_night(folder: Path, copies: int) -> tuple[str, str, int]:
    import pandas as pd

    from nightscore.landing import replay_parts

    parts = replay_parts("schedule", DAY)
    night = parts["flights"]
    big = pd.concat(
        [night.assign(flight=night["flight"] + 10_000 * i) for i in range(copies)],
        ignore_index=True,
    )
    flights, weather = folder / f"flights_{copies}x.csv", folder / "weather.csv"
    flights.write_text(big.to_csv(index=False, lineterminator="\n"))
    weather.write_text(parts["weather"].to_csv(index=False, lineterminator="\n"))
    return str(flights), str(weather), flights.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="add a 50 MB flights file")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FLIGHTS", "WEATHER"))
    parser.add_argument("--header-child", nargs=2, metavar=("MODE", "WIDTH"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    if args.header_child:
        header_child(args.header_child[0], int(args.header_child[1]))
        return 0

    scales = [1, 10, 100] + ([1000] if args.big else [])
    print(
        f"schedule batch of {DAY} (flights.csv scaled), one fresh process per parse, median of 3 up to 100x"
    )
    print(
        f"{'night':>6} {'bytes':>12} | {'reference s':>11} {'peak MB':>8} {'+MB':>7} | "
        f"{'bounded s':>9} {'peak MB':>8} {'+MB':>7}  verdict"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for copies in scales:
            flights, weather, size = write_night(Path(tmp), copies)
            repeat = 3 if copies <= 100 else 1  # the machine is shared: a median of 3
            before = run("--child", "reference", flights, weather, repeat=repeat)
            after = run("--child", "bounded", flights, weather, repeat=repeat)
            verdict = "parsed" if after["ok"] else f"rejected: {after['why'][:70]}"
            print(
                f"{copies:>5}x {size:>12,} | {before['s']:>11.2f} {before['peak']:>8.0f} {before['delta']:>7.0f} | "
                f"{after['s']:>9.2f} {after['peak']:>8.0f} {after['delta']:>7.0f}  {verdict}"
            )
    print()
    print("header check (flights.csv contract), seconds")
    print(f"{'columns':>8} | {'reference':>10} | {'bounded':>8}")
    for width in (1_000, 10_000, 100_000):
        before = run("--header-child", "reference", str(width)) if width <= 10_000 else None
        after = run("--header-child", "bounded", str(width))
        shown = f"{before['s']:>10.3f}" if before else f"{'(skipped)':>10}"
        print(f"{width:>8,} | {shown} | {after['s']:>8.4f}")
    print("(the reference is quadratic: 100,000 columns would take ~100x its 10,000 time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
