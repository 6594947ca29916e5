"""Wall time of modelgen commands, end to end (process start to exit), median of N runs.

    python benchmarks/time_commands.py [--runs 7]

Prints a Markdown table; benchmarks/generate.md holds the figures measured with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def time_command(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("modelgen"))
    if not os.path.exists(exe):
        exe = "modelgen"
    out = tempfile.mkdtemp()
    cases = {
        "modelgen generate resnet50 (stdout)": [exe, "generate", "resnet50"],
        "modelgen generate resnet50 --style oop -o FILE": [
            exe,
            "generate",
            "resnet50",
            "--style",
            "oop",
            "-o",
            f"{out}/r50.py",
            "--force",
        ],
        "modelgen generate resnet152 (stdout)": [exe, "generate", "resnet152"],
        "modelgen list": [exe, "list"],
        "modelgen golden check (all files)": [exe, "golden", "check"],
        "modelgen golden update (all files, none changed)": [exe, "golden", "update"],
        "python -c 'pass' (interpreter floor)": [sys.executable, "-c", "pass"],
    }
    print("| command | median (s) | min (s) | max (s) | runs |\n|---|---|---|---|---|")
    for label, argv in cases.items():
        times = time_command(argv, args.runs)
        print(
            f"| `{label}` | {statistics.median(times):.3f} | {min(times):.3f} "
            f"| {max(times):.3f} | {len(times)} |"
        )


if __name__ == "__main__":
    main()
