"""The emitted files are plain Keras 3: every golden model, in both styles, builds on the
torch backend (the CPU build of PyTorch) and on the jax backend (jax[cpu]) with the
tensorflow parameter count and, given the same weights, the same outputs (1e-4); and on
torch it trains as `modelgen verify` trains it (gradient check, one optimizer step).

The parity check needs the architecture, not the full size: each model is built at its
small test input with shallow metaparameters (shallow(): at most two blocks or layers per
group, Inception's groups up to their last auxiliary tap, fc and embedding layers of at
most 64 units), so every block template and every shortcut kind is still built and
compared, at a fraction of the cost. Presets whose shallow models are one program
(conftest.small_programs: the same code, after the names, on the same metaparameters) are
run once, under a label that names them all; and where both styles' models have one
serialization (conftest.program_styles: no code of the files' own, the same config layer
by layer and edge by edge, which test_models asserts), the procedural file's run stands
for both, labelled "(procedural+oop)".

KERAS_BACKEND is fixed when keras is first imported, so each other backend runs in one
child process (tests/backend_child.py) for every golden file; the two children run side by
side. Weights travel as .weights.h5 files written here by the procedural model on the
tensorflow backend; the oop file loads the same weights (both styles build the same
layers, by name: test_models.test_small_styles_build_the_same_network) and must give the
same outputs. A multi-output classifier (classifier.heads) returns a dict: each head is
compared, by name, on its probabilities (the heads take no classifier_activation); a
pre-stem that resizes takes inputs of any size, fed here a larger, non-square batch that it
resizes to the small input.
"""

import json
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
    backend_child_env,
    build,
    default_metaparameters,
    golden_path,
    plan,
    program_styles,
    sample_inputs,
    small_input,
    small_kwargs,
    small_programs,
)
from conftest import shallow as conftest_shallow

from generator.harness import task_for_plan
from generator.pipeline import plan_for

HERE = Path(__file__).resolve().parent
SMALL_CLASSES = 10
TOLERANCE = 1e-4  # max abs difference, relative to the largest logit when that is over 1


def run_backend_children(backends, jobs: list[dict], folder: Path) -> dict[str, dict]:
    """Run backend_child.py once per backend, side by side, on the same jobs:
    {backend: {label: report}}."""
    config = folder / "jobs.json"
    config.write_text(json.dumps(jobs), encoding="utf-8")
    procs = {
        backend: subprocess.Popen(
            [sys.executable, str(HERE / "backend_child.py"), str(config)],
            env=backend_child_env(backend),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for backend in backends
    }
    results = {}
    for backend, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=1200)
        except subprocess.TimeoutExpired:
            for other in procs.values():
                other.kill()
            raise
        assert proc.returncode == 0, f"{backend}: {stderr[-3000:]}"
        reports = [
            json.loads(line[len("RESULT ") :])
            for line in stdout.splitlines()
            if line.startswith("RESULT ")
        ]
        results[backend] = {report["label"]: report for report in reports}
    return results


def shallow(metaparameters: dict) -> dict:
    """conftest.shallow with units: at most MAX_DEPTH blocks or layers per group and fc
    and embedding layers of at most MAX_UNITS units."""
    return conftest_shallow(metaparameters, units=True)


def test_shallow_keeps_the_kinds_and_cuts_the_depth():
    resnet = shallow(default_metaparameters("resnet152", "procedural"))
    assert [g["n_blocks"] for g in resnet["groups"]] == [2, 2, 2, 2]
    assert default_metaparameters("resnet152", "procedural")["groups"][2]["n_blocks"] == 36
    vgg = shallow(default_metaparameters("vgg19", "oop"))
    assert [g["n_layers"] for g in vgg["groups"]] == [2, 2, 2, 2, 2]
    assert vgg["dense_units"] == [64, 64]
    inception = shallow(default_metaparameters("inception_v1", "procedural"))
    assert [len(g["blocks"]) for g in inception["groups"]] == [2, 5, 2]  # taps after 1, 4
    assert shallow({"filters": [64, 32, 32]}) == {"filters": [64, 32, 32]}


BACKENDS = ("torch", "jax")
# Where each golden model also trains as `modelgen verify` trains it (the harness's
# gradient check and one optimizer step, in the child): torch runs eagerly, so a model costs
# its step; jax would compile each model (test_verify trains one preset of each task kind
# there, and test_faster_rcnn Faster R-CNN under jit).
TRAIN_ON = ("torch",)
# A region-based detector's regions (conftest.small_kwargs builds 3): 2 foreground at a
# quarter, as `modelgen verify` trains them, so that the box head has a loss to learn from.
TRAINED_REGIONS = 8


@pytest.mark.slow
def test_every_golden_model_matches_on_torch_and_jax(tmp_path):
    """Both styles of every golden model, shallow (see shallow()), on torch and on jax in
    the children, against the procedural model on tensorflow here: the same parameter
    count and, with its weights, the same outputs. Once per small program (conftest.
    small_programs: resnet101 and resnet152 at two blocks a group are resnet50's program;
    the label names them all; each twin's shallow() cut is its representative's, as the
    cut of equal metaparameters), in each style where the files run code of their own,
    else the procedural file once for both (conftest.program_styles: the two styles' models
    have one serialization, test_models checks it on tensorflow). The oop file loads the
    procedural file's weights (the two styles build the same layers), so one tensorflow
    model per preset serves both. Then, on torch, each trains as `modelgen verify` trains
    it (TRAIN_ON)."""
    jobs, expected = [], {}
    for preset, members in small_programs().items():
        shape = small_input(preset)
        kwargs = small_kwargs(preset, SMALL_CLASSES)
        if architecture(preset) == "classifier" and not plan(preset).heads:
            kwargs["classifier_activation"] = None  # compare logits
        n_regions = TRAINED_REGIONS if "n_regions" in kwargs else None  # R-CNN, Fast R-CNN
        if n_regions:
            kwargs["n_regions"] = n_regions
        meta = shallow(default_metaparameters(preset, "procedural"))
        meta.update(kwargs.pop("metaparameters", {}))  # a detector's small region head
        model = build(preset, "procedural", metaparameters=meta, **kwargs)
        weights = tmp_path / f"{preset}.weights.h5"
        model.save_weights(weights)
        if None in model.inputs[0].shape[1:3]:  # a pre-stem that resizes: any size in
            shape = (shape[0] + 16, shape[1] + 8, shape[2])
        x = sample_inputs(preset, shape, n_regions=n_regions)
        result = model(x, training=False)
        outputs = as_outputs(result)
        ys = {f"y{i}": keras.ops.convert_to_numpy(y) for i, y in enumerate(outputs)}
        assert all(np.all(np.isfinite(y)) for y in ys.values()), preset
        data = tmp_path / f"{preset}.npz"
        xs = {f"x{i}": a for i, a in enumerate(x if isinstance(x, list) else [x])}
        np.savez(data, **xs, **ys)
        # build_model(metaparameters=...) or Class(**metaparameters)
        args = {"procedural": {**kwargs, "metaparameters": meta}, "oop": {**kwargs, **meta}}
        task = task_for_plan(plan_for(preset, [f"input_shape={list(small_input(preset))}"]))
        for style, styles in program_styles(preset):
            label = f"{'+'.join(members)} ({styles})"
            expected[label] = (model.count_params(), len(outputs))
            jobs.append(
                {
                    "label": label,
                    "path": str(golden_path(preset, style)),
                    "build": args[style],
                    "weights": str(weights),
                    "data": str(data),
                    "output_names": list(result) if isinstance(result, dict) else None,
                    "task": task,  # what `modelgen verify` would train it on
                    "train_on": list(TRAIN_ON),
                    "logits": kwargs.get("classifier_activation", "softmax") is None,
                }
            )
        keras.backend.clear_session()

    results = run_backend_children(BACKENDS, jobs, tmp_path)
    failures = []
    for backend in BACKENDS:
        reports = results[backend]
        assert sorted(reports) == sorted(expected), f"{backend}: not every golden file reported"
        for label, (params, n_outputs) in expected.items():
            report = reports[label]
            if "error" in report:
                failures.append(f"{label} on {backend}: {report['error']}")
                continue
            assert report["backend"] == backend
            if report["params"] != params:
                failures.append(
                    f"{label}: {report['params']:,} params on {backend}, {params:,} on tf"
                )
            if report["n_outputs"] != n_outputs:
                failures.append(
                    f"{label}: {report['n_outputs']} outputs on {backend}, {n_outputs} on tf"
                )
            if not report["diff"] <= TOLERANCE:
                failures.append(f"{label}: outputs differ by {report['diff']:.3g} on {backend}")
            if backend in TRAIN_ON and "train_loss" not in report:
                failures.append(f"{label}: not trained on {backend}")
    assert len(expected) == sum(len(program_styles(preset)) for preset in small_programs())
    assert sorted(p for members in small_programs().values() for p in members) == sorted(PRESETS)
    assert not failures, "\n".join(failures)
