"""The emitted files are plain Keras 3: every golden model builds on the torch backend
(the CPU build of PyTorch) with the tensorflow parameter count and, given the same
weights, the same outputs.

The procedural files are compared here; the oop files build the same network (same layers,
configs and outputs: test_models.test_styles_build_the_same_network), and test_verify.py
builds and trains both styles of every preset on torch.

KERAS_BACKEND is fixed when keras is first imported, so the torch side runs in one child
process (tests/backend_child.py) for every golden file; weights travel as .weights.h5
files written here, on the tensorflow backend. A multi-output classifier (classifier.heads)
returns a dict: each head is compared, by name, on its probabilities (the heads take no
classifier_activation); a pre-stem that resizes takes inputs of any size, fed here a larger,
non-square batch that it resizes to the small input.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import (
    PRESETS,
    architecture,
    as_outputs,
    build,
    golden_path,
    plan,
    sample_inputs,
    small_input,
    small_kwargs,
)

HERE = Path(__file__).resolve().parent
SMALL_CLASSES = 10
TOLERANCE = 1e-4  # max abs difference, relative to the largest logit when that is over 1


def child_env(backend: str) -> dict:
    # One thread per process: CI runs two test workers on two cores.
    return {**os.environ, "KERAS_BACKEND": backend, "OMP_NUM_THREADS": "1"}


def run_backend_child(backend: str, jobs: list[dict], folder: Path) -> dict[str, dict]:
    config = folder / f"{backend}_jobs.json"
    config.write_text(json.dumps(jobs), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(HERE / "backend_child.py"), str(config)],
        env=child_env(backend),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = [
        json.loads(line[len("RESULT ") :])
        for line in proc.stdout.splitlines()
        if line.startswith("RESULT ")
    ]
    return {report["label"]: report for report in reports}


@pytest.mark.slow
def test_every_golden_model_matches_on_torch(tmp_path):
    jobs, expected = [], {}
    for preset in PRESETS:
        shape = small_input(preset)
        kwargs = small_kwargs(preset, SMALL_CLASSES)
        if architecture(preset) == "classifier" and not plan(preset).heads:
            kwargs["classifier_activation"] = None  # compare logits
        model = build(preset, "procedural", **kwargs)  # both styles build this network
        weights = tmp_path / f"{preset}.weights.h5"
        model.save_weights(weights)
        if None in model.inputs[0].shape[1:3]:  # a pre-stem that resizes: any size in
            shape = (shape[0] + 16, shape[1] + 8, shape[2])
        x = sample_inputs(preset, shape)
        result = model(x, training=False)
        outputs = as_outputs(result)
        ys = {f"y{index}": keras.ops.convert_to_numpy(y) for index, y in enumerate(outputs)}
        assert all(np.all(np.isfinite(y)) for y in ys.values()), preset
        data = tmp_path / f"{preset}.npz"
        xs = {f"x{index}": a for index, a in enumerate(x if isinstance(x, list) else [x])}
        np.savez(data, **xs, **ys)
        label = f"{preset} (procedural)"
        expected[label] = (model.count_params(), len(outputs))
        jobs.append(
            {
                "label": label,
                "path": str(golden_path(preset, "procedural")),
                "build": kwargs,
                "weights": str(weights),
                "data": str(data),
                "output_names": list(result) if isinstance(result, dict) else None,
            }
        )
        keras.backend.clear_session()

    reports = run_backend_child("torch", jobs, tmp_path)
    assert sorted(reports) == sorted(expected), "the child did not report every golden file"
    failures = []
    for label, (params, n_outputs) in expected.items():
        report = reports[label]
        if "error" in report:
            failures.append(f"{label}: {report['error']}")
            continue
        assert report["backend"] == "torch"
        if report["params"] != params:
            failures.append(f"{label}: {report['params']:,} params on torch, {params:,} on tf")
        if report["n_outputs"] != n_outputs:
            failures.append(f"{label}: {report['n_outputs']} outputs, {n_outputs} on tf")
        if not report["diff"] <= TOLERANCE:
            failures.append(f"{label}: outputs differ by {report['diff']:.3g} (relative)")
    assert not failures, "\n".join(failures)
