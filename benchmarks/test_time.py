"""Where the test suite's time goes, from a JUnit XML report of one whole run.

    python -m pytest -n 2 --durations=30 --junitxml=junit.xml    # the README's command
    python benchmarks/test_time.py junit.xml --preset resnet152 --presets 80

Prints the total test time (summed over the workers), the 30 slowest tests, the time per
test file, the time of every test whose id names a preset (split per preset) against the
time of the tests that cover every preset at once (verify's chunks, backend parity...),
the marginal cost of one preset, and a projection to N presets.

A preset's marginal cost is the time of its own tests (its id in the test id) plus its
share (1 / number of presets) of the tests that loop over every preset inside one test.
The projection scales both to N presets and keeps the rest (tests of the CLI, the spec,
the writer...) fixed. Worker seconds become wall seconds divided by the workers (-n).
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.spec import preset_names  # noqa: E402

# Tests that loop over every preset inside one test (their time grows with the zoo).
EVERY_PRESET_INSIDE = (
    "test_backends.py::test_every_golden_model_matches_on_torch_and_jax",
    "test_golden.py::",
    "test_summary.py::test_every_preset_totals_equal_the_plan_and_list",
    "test_hostile.py::test_the_allowed_names_are_computed_from_the_golden_files",
)


def cases(path: Path) -> list[tuple[str, float]]:
    """(node id, seconds) of every test case in the report."""
    rows = []
    for case in ET.parse(path).iter("testcase"):
        module = case.get("classname", "").replace(".", "/") + ".py"
        rows.append((f"{module}::{case.get('name')}", float(case.get("time") or 0.0)))
    return rows


def presets_in(nodeid: str, presets: list[str]) -> list[str]:
    if "[" not in nodeid:
        return []
    params = nodeid.rsplit("[", 1)[1].rstrip("]").split("-")
    return [p for p in presets if p in params]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit", type=Path)
    parser.add_argument("--preset", default="resnet152", help="the preset whose cost to show")
    parser.add_argument("--presets", type=int, default=80, help="project to this many presets")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    presets = preset_names()
    rows = cases(args.junit)
    total = sum(seconds for _, seconds in rows)
    print(
        f"{len(rows)} tests, {total:.0f} worker-seconds ({total / args.workers:.0f} s of wall "
        f"at -n {args.workers}), {len(presets)} presets\n"
    )

    print("| seconds | test |\n|---:|---|")
    for nodeid, seconds in sorted(rows, key=lambda row: -row[1])[:30]:
        print(f"| {seconds:.1f} | `{nodeid}` |")

    per_file = Counter()
    for nodeid, seconds in rows:
        per_file[nodeid.split("::")[0]] += seconds
    print("\n| worker-seconds | file |\n|---:|---|")
    for name, seconds in per_file.most_common():
        print(f"| {seconds:.0f} | {name} |")

    per_preset, inside, fixed = Counter(), 0.0, 0.0
    for nodeid, seconds in rows:
        named = presets_in(nodeid, presets)
        if named:
            for preset in named:
                per_preset[preset] += seconds / len(named)
        elif any(key in nodeid for key in EVERY_PRESET_INSIDE):
            inside += seconds
        else:
            fixed += seconds
    own = sum(per_preset.values())
    mean = (own + inside) / len(presets)
    marginal = per_preset[args.preset] + inside / len(presets)
    print(
        f"\nper-preset tests: {own:.0f} worker-s; every-preset-inside tests: {inside:.0f}; "
        f"the rest: {fixed:.0f}"
    )
    print(f"mean cost of one preset: {mean:.1f} worker-s ({mean / args.workers:.1f} s wall)")
    share = inside / len(presets)
    print(
        f"{args.preset}: {per_preset[args.preset]:.1f} worker-s of its own tests + {share:.1f} "
        f"share = {marginal:.1f} ({marginal / args.workers:.1f} s wall)"
    )
    print("\n| preset | own worker-s |\n|---|---:|")
    for preset, seconds in per_preset.most_common():
        print(f"| {preset} | {seconds:.1f} |")
    extra = args.presets - len(presets)
    for label, cost in (("mean preset", mean), (args.preset, marginal)):
        projected = (total + extra * cost) / args.workers
        print(
            f"projection, {args.presets} presets at the {label}'s cost: {projected / 60:.1f} min "
            "of test wall time (plus set-up)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
