"""Child process of test_backends.py: builds golden files under another Keras backend.

Run as `KERAS_BACKEND=torch python tests/backend_child.py JOBS.json` (or jax). For each
job it imports the golden file, builds the model, loads the weights the tensorflow side
saved, calls it on the saved input (eagerly: on jax each operation is compiled once per
shape and reused by the next model, cheaper here than compiling each whole model) and
prints one JSON line: the backend, the parameter count and the largest difference from the
tensorflow outputs. A model that returns a dict of outputs (classifier.heads) is compared
head by head, in the job's `output_names` order. On the backends the job's `train_on`
names (torch: eager, cheap per model), it then trains the model as `modelgen verify` does,
with the harness's own code: the gradient check and one optimizer step.
"""

import json
import sys
from pathlib import Path

import keras
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator import harness  # noqa: E402


def skip_random_initial_values() -> None:
    """On jax, every random initializer compiles an XLA program per weight shape (about
    0.4 s each on a CPU, most of a build); the weights are loaded right after building, so
    here they start at zeros. Test-only: it patches Keras' jax random module."""
    if keras.backend.backend() != "jax":
        return
    import jax
    from keras.src.backend.jax import random as jax_random

    def zeros(shape, *args, dtype=None, seed=None, **kwargs):
        dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        return jax.device_put(np.zeros(shape, dtype=dtype))

    for name in ("uniform", "normal", "truncated_normal"):
        setattr(jax_random, name, zeros)


def count(data, prefix: str) -> int:
    return sum(1 for name in data.files if name.startswith(prefix))


def train_as_verify_does(model, module, task: dict, logits: bool) -> float:
    """What `modelgen verify` does to a built model (harness.verify_file): the task's
    synthetic batch, every trainable variable's gradient finite and non-zero, then one
    optimizer step with a finite loss. Returns that loss."""
    batch = harness.task_batch(model, module, task, 2)
    if logits:  # built with classifier_activation=None: the class losses take logits
        scores = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        batch.losses = [
            scores if loss == "sparse_categorical_crossentropy" else loss for loss in batch.losses
        ]
    harness.check_gradients(model, batch)
    losses, _ = harness.train(model, batch, 1, False, False, task.get("recipe"))
    if not all(np.isfinite(losses)):
        raise ValueError(f"the training loss is not finite: {losses}")
    return losses[0]


def run(job: dict) -> dict:
    module = harness.load_module(Path(job["path"]))
    model = harness.build_from_module(module, **job["build"])
    model.load_weights(job["weights"])
    data = np.load(job["data"])
    # x0 (x1: a Siamese pair's second image, a detector's boxes), then y0, y1 ... per output.
    xs = [keras.ops.convert_to_tensor(data[f"x{i}"]) for i in range(count(data, "x"))]
    result = model(xs[0] if len(xs) == 1 else xs, training=False)
    if isinstance(result, dict):
        names = job.get("output_names")
        if names is None or sorted(names) != sorted(result):
            raise ValueError(f"outputs {sorted(result)}, the tensorflow side had {names}")
        result = [result[name] for name in names]
    outputs = result if isinstance(result, list | tuple) else [result]
    expected = [data[f"y{index}"] for index in range(count(data, "y"))]
    diffs = []
    for ours, theirs in zip(outputs, expected, strict=True):
        ours = keras.ops.convert_to_numpy(ours)
        scale = max(1.0, float(np.max(np.abs(theirs))))
        diffs.append(float(np.max(np.abs(ours - theirs))) / scale)
    report = {
        "label": job["label"],
        "backend": keras.backend.backend(),
        "params": model.count_params(),
        "n_outputs": len(outputs),
        "diff": max(diffs),
    }
    if keras.backend.backend() in job.get("train_on", []):  # after the comparison: it moves
        report["train_loss"] = train_as_verify_does(model, module, job["task"], job["logits"])
    return report


def main(path: str) -> None:
    skip_random_initial_values()
    harness.import_keras()  # once a process: the framework's objects frozen (gc.freeze)
    for job in json.loads(Path(path).read_text(encoding="utf-8")):
        try:
            report = run(job)
        except Exception as exc:  # noqa: BLE001 - reported, the test fails on it
            report = {"label": job["label"], "error": f"{type(exc).__name__}: {exc}"[:500]}
        print("RESULT " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
