"""GPU smoke run: train every golden model a few dozen steps on synthetic data and time it.

    KERAS_BACKEND=jax python benchmarks/gpu_smoke.py                  # full size, GPU
    python benchmarks/gpu_smoke.py --input-size 64 --steps 3 --batch 2 --output FILE  # CPU

For each preset (golden/procedural/<preset>.py, at the spec's input size unless
--input-size) it records images per second (batch / median step time, the first,
compiling step left out), peak memory and the loss drop over the run; where
keras.applications has the same network (the spec's `reference`) it trains that model in
the same process with the same batch, dtype and backend and records the throughput ratio
ours / theirs. ResNeXt is also timed with `grouped_conv: split` (the paper's
split-transform-merge) to measure what the native grouped convolution saves. The
detectors (R-CNN, Fast R-CNN) train on [images, boxes] through their files' own training
helpers; images/s counts images, each with its n_regions regions (8 in a --input-size run,
with a small region input: TINY_DETECTOR).

Mixed precision (mixed_float16) where a GPU is present; float32 on a CPU. Keras must be
installed with a backend (JAX, torch or tensorflow); this script never imports tensorflow
itself. It needs the generator's own dependencies (pip install -e .) for the presets.
The Markdown table goes to --output (default benchmarks/gpu_smoke.md).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator.errors import SpecError, printable  # noqa: E402
from generator.harness import (  # noqa: E402
    TASKS,
    build_from_module,
    detector_api,
    load_module,
    task_for_plan,
    train,
)
from generator.pipeline import generate, plan_for  # noqa: E402
from generator.pretrained import keras_builder  # noqa: E402
from generator.registry import detectors  # noqa: E402
from generator.spec import preset_names  # noqa: E402


def device_info() -> tuple[str, bool]:
    """(a description of the accelerator or CPU, whether it is a GPU), for any backend."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return device.device_kind, device.platform == "gpu"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0), True
    if backend == "tensorflow":
        import tensorflow as tf  # the backend itself: keras has imported it already

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.config.experimental.get_device_details(gpus[0]).get("device_name"), True
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)", False


def reset_peak() -> None:
    import keras

    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
    elif backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            tf.config.experimental.reset_memory_stats("GPU:0")


def peak_memory() -> str:
    """Peak device memory since reset_peak (GPU), or the process's peak RSS (CPU)."""
    import keras

    backend = keras.backend.backend()
    peak = None
    if backend == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        peak = stats.get("peak_bytes_in_use")
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            peak = torch.cuda.max_memory_allocated()
    elif backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
    if peak is not None:
        return f"{peak / 2**30:.2f} GiB"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return f"{rss:.2f} GiB RSS"


def measure(model, task: dict, batch: int, steps: int, seed: int = 0) -> dict:
    """Train on one synthetic batch; images/s from the median step, the loss drop."""
    import numpy as np

    data = TASKS.get(task["kind"], TASKS["auto"])(model, batch, np.random.default_rng(seed), task)
    reset_peak()
    recipe = task.get("recipe")  # the family's (harness.task_for_plan), as verify trains
    losses, times = train(model, data, steps, jit_compile="auto", progress=False, recipe=recipe)
    median = statistics.median(times[1:] or times)
    return {
        "params": model.count_params(),
        "images_per_s": batch / median,
        "peak": peak_memory(),
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }


SIDES = (32, 64, 75, 96, 128, 160, 224, 299)


def input_shape(preset: str, side: int | None) -> tuple[int, int, int]:
    """The spec's input, or the smallest square side >= `side` the preset plans at
    (Inception v3's valid convolutions and Inception v1's auxiliary heads need more)."""
    spec_shape = tuple(plan_for(preset).spec.input_shape)
    if side is None:
        return spec_shape
    for candidate in [side, *(s for s in SIDES if s > side)]:
        shape = (candidate, candidate, spec_shape[2])
        try:
            plan_for(preset, [f"input_shape={list(shape)}"])
        except SpecError:
            continue
        return shape
    return spec_shape


# A detector at a tiny (--input-size) run: few regions and a small region input, so that
# a CPU step takes seconds; at full size it runs as the golden file builds it.
TINY_DETECTOR = {
    "rcnn": {"n_regions": 8, "metaparameters": {"crop_size": 32}},
    "fast_rcnn": {"n_regions": 8, "metaparameters": {"pool_size": 2}},
    # Its regions are sampled inside the model: a small pool and anchors that fit the image.
    "faster_rcnn": {"metaparameters": {"pool_size": 2, "anchor_scales": [16.0, 32.0]}},
}


def build_ours(path: Path, plan, shape, n_classes: int, tiny: bool = False):
    """(the golden model at `shape`, its task); n_classes only where the plan takes it (a
    classifier with one `predictions` output, a detector: classifier.heads have their own,
    twins and autoencoders none). A detector's task carries the file's training helpers,
    and a tiny run builds it with TINY_DETECTOR's regions."""
    kwargs = {"input_shape": shape}
    if getattr(plan.spec, "n_classes", None) is not None and not plan.heads:
        kwargs["n_classes"] = n_classes
    architecture = getattr(plan.spec, "architecture", "classifier")
    if tiny and architecture in detectors():
        kwargs.update(TINY_DETECTOR[architecture])
    module = load_module(path)
    task = {**task_for_plan(plan), "api": detector_api(module)}
    return build_from_module(module, **kwargs), task


def build_reference(reference: str, shape, n_classes: int):
    """keras.applications' network (the spec's reference, with its arguments: alpha...)."""
    import keras

    name, kwargs = keras_builder(reference)
    builder = getattr(keras.applications, name)
    return builder(weights=None, input_shape=shape, classes=n_classes, **kwargs)


def run(args) -> list[dict]:
    import keras

    rows = []
    presets = args.presets.split(",") if args.presets else preset_names()
    folder = Path(tempfile.mkdtemp(prefix="gpu-smoke-"))
    for preset in presets:
        shape = input_shape(preset, args.input_size)
        plan = plan_for(preset, [f"input_shape={list(shape)}"])  # its task's input_shape
        variants = [("", ROOT / "golden" / "procedural" / f"{preset}.py")]
        if (getattr(plan.spec.learner, "cardinality", None) or 1) > 1:  # ResNeXt: native vs split
            split = folder / f"{preset}_split.py"
            sets = ["learner.grouped_conv=split"]
            split.write_text(generate(preset, "procedural", sets), encoding="utf-8")
            variants.append((" (split)", split))
        for suffix, path in variants:
            keras.backend.clear_session()
            row = {"preset": preset + suffix, "input": "x".join(map(str, shape))}
            print(f"{row['preset']} at {row['input']} ...", flush=True)
            model = theirs = None
            try:
                tiny = args.input_size is not None
                model, task = build_ours(path, plan, shape, args.n_classes, tiny)
                row.update(measure(model, task, args.batch, args.steps))
            except Exception as exc:  # noqa: BLE001 - a row says what failed
                row["error"] = printable(f"{type(exc).__name__}: {exc}")[:200]
            model = None  # free it before the reference is built
            reference = plan.spec.reference.removeprefix("keras.applications.")
            if not suffix and plan.spec.keras_reference and not args.no_reference:
                keras.backend.clear_session()
                try:
                    theirs = build_reference(reference, shape, args.n_classes)
                    ref = measure(theirs, {"kind": "classifier"}, args.batch, args.steps)
                    row["reference"] = reference
                    row["ratio"] = row["images_per_s"] / ref["images_per_s"]
                    row["reference_images_per_s"] = ref["images_per_s"]
                except Exception as exc:  # noqa: BLE001
                    row["reference"] = f"{reference} failed: {type(exc).__name__}"
                theirs = None
            rows.append(row)
            print(f"  {row}", flush=True)
    return rows


def table(rows: list[dict], args, device: str, gpu: bool, dtype: str) -> str:
    import keras

    today = datetime.date.today().isoformat()
    kind = "GPU" if gpu else "no GPU: CPU figures, not the GPU run the issue asks for"
    lines = [
        "# GPU smoke run" if gpu else "# GPU smoke run: CPU figures",
        "",
        f"Measured {today} on {device} ({kind}); Keras {keras.__version__}, backend "
        f"{keras.backend.backend()}, dtype policy {dtype}, batch {args.batch}, "
        f"{args.steps} steps of Adam (1e-3) on one synthetic batch, "
        f"input {'each spec' + chr(39) + 's own' if args.input_size is None else args.input_size}."
        f" Python {platform.python_version()}.",
        "",
        "Reproduce: `"
        + " ".join([f"KERAS_BACKEND={keras.backend.backend()}", "python", *sys.argv])
        + "`",
        "",
        "images/s = batch / median step time (the first, compiling step left out); ratio = "
        "ours / keras.applications images/s, same process, batch, dtype and backend; loss = "
        "first -> last step.",
        "",
        "| model | input | params | images/s | keras.applications | ratio | peak memory | loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['preset']} | {row['input']} | failed: {row['error']} |||||| ")
            continue
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else ""
        ref = row.get("reference", "")
        if "reference_images_per_s" in row:
            ref = f"{ref} ({row['reference_images_per_s']:.1f}/s)"
        lines.append(
            f"| {row['preset']} | {row['input']} | {row['params']:,} | "
            f"{row['images_per_s']:.1f} | {ref} | {ratio} | {row['peak']} | "
            f"{row['first_loss']:.3f} -> {row['last_loss']:.3f} |"
        )
    by_name = {row["preset"]: row for row in rows if "error" not in row}
    for name in sorted(by_name):
        split = by_name.get(f"{name} (split)")
        if split:
            factor = by_name[name]["images_per_s"] / split["images_per_s"]
            lines += ["", f"{name}: `native` grouped convolution / `split`: {factor:.2f}x."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", help="comma-separated presets (default: all)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--input-size", type=int, default=None)
    parser.add_argument("--n-classes", type=int, default=1000)
    parser.add_argument("--no-reference", action="store_true", help="skip keras.applications")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "gpu_smoke.md")
    args = parser.parse_args(argv)

    import keras

    device, gpu = device_info()
    dtype = "mixed_float16" if gpu else "float32"
    keras.mixed_precision.set_global_policy(dtype)
    print(f"{device}: backend {keras.backend.backend()}, {dtype}", flush=True)
    rows = run(args)
    args.output.write_text(table(rows, args, device, gpu, dtype), encoding="utf-8")
    print(f"wrote {args.output}")
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
