"""Generation wall time for deep specs, end to end (process start to exit), median of N.

    python benchmarks/scale.py [--runs 5]

Each case runs `modelgen generate resnet50 --set ... -o FILE --force` in a subprocess.
Layer counts are keras.applications-style counts (input, stem 6, projection block 12,
identity block 10, head 2); tests/test_scale.py checks the formula against Keras by building
the 1,077-layer network. Prints a Markdown table; benchmarks/generate.md ("Scale") holds
the figures measured with it.
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


def layers(n_blocks: list[int]) -> int:
    return 1 + 6 + sum(12 + 10 * (n - 1) for n in n_blocks) + 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("modelgen"))
    if not os.path.exists(exe):
        exe = "modelgen"
    out = Path(tempfile.mkdtemp()) / "deep.py"
    deepest = "[" + ", ".join(["{n_filters: 4, n_blocks: 1024}"] * 64) + "]"
    cases = {
        "resnet50 (as shipped)": ([], [3, 4, 6, 3]),
        "n_blocks [3, 40, 60, 3]": (
            ["learner.groups.1.n_blocks=40", "learner.groups.2.n_blocks=60"],
            [3, 40, 60, 3],
        ),
        "n_blocks [3, 100, 200, 3]": (
            ["learner.groups.1.n_blocks=100", "learner.groups.2.n_blocks=200"],
            [3, 100, 200, 3],
        ),
        "64 groups x 1024 blocks (the most a spec allows)": (
            [f"learner.groups={deepest}"],
            [1024] * 64,
        ),
    }
    print("| spec (resnet50 with) | Keras layers | median (s) | min (s) | max (s) | runs |")
    print("|---|---|---|---|---|---|")
    for label, (overrides, n_blocks) in cases.items():
        argv = [exe, "generate", "resnet50", "-o", str(out), "--force"]
        for item in overrides:
            argv += ["--set", item]
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(argv, check=True, cwd=ROOT, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
        print(
            f"| {label} | {layers(n_blocks):,} | {statistics.median(times):.3f} "
            f"| {min(times):.3f} | {max(times):.3f} | {len(times)} |"
        )


if __name__ == "__main__":
    main()
