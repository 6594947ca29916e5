"""Run an emitted model file: import it, build it, train it on synthetic data.

`modelgen verify` runs this module in a child process (`python -m generator.harness`),
and benchmarks/gpu_smoke.py imports it, so keras is imported inside functions only: the
CLI process never loads it, and nothing here imports tensorflow unless that is the Keras
backend. Works on the tensorflow, jax and torch backends.

What data a model trains on depends on what kind of model it is. Each registered
architecture (generator/pieces/architectures/) says what its task is (`task_for_plan`
asks it) and brings the batch makers of its task kinds: TASKS, derived from the registry,
maps each kind to a function that makes one synthetic batch and its losses. The detectors
(R-CNN, Fast R-CNN) train through the emitted file's own helpers (detector_task). A
model of no known kind falls back on `inspect_task`, which reads the built model's inputs
and outputs. A model that returns a dict of outputs (classifier.heads) gets its targets,
losses and weights keyed by output name. An input of any size (a pre-stem that resizes or
crops: (None, None, C)) gets images of the task's `input_shape`.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

STAGES = ("render", "import", "build", "train")


class StageError(Exception):
    """A failure at one stage of a run: `stage` is one of STAGES."""

    def __init__(self, stage: str, reason: str):
        self.stage = stage
        self.reason = reason
        super().__init__(f"{stage}: {reason}")


# The side given to an input of any size when the task names no input_shape (an emitted
# file verified without --input-size).
ANY_SIDE = 64


@dataclass
class Batch:
    """One synthetic batch and how to score it: x (an array, or a list for several
    inputs), y (one target per output), and one loss and weight per output. `names`, for a
    model that returns a dict of outputs: the output each entry belongs to."""

    x: object
    y: list
    losses: list
    loss_weights: list[float]
    names: list[str] | None = None

    def keyed(self, values: list):
        """values as the model's outputs come: a dict by output name, one value, or a list."""
        if self.names is not None:
            return dict(zip(self.names, values, strict=True))
        return values[0] if len(values) == 1 else list(values)


# --------------------------------------------------------------------- the kinds of model


def task_for_plan(plan) -> dict:
    """What `modelgen verify` tells the child about a planned model (no keras here):
    the kind of model and the options its task needs. Every task carries the plan's
    input_shape (the images for an input of any size) and, with a pre-stem that rescales,
    `pixels`: the images are raw pixels in [0, 255]."""
    from .registry import recipe_for

    spec = plan.spec
    common = {"input_shape": list(spec.input_shape), "recipe": recipe_for(spec).as_task()}
    pre_stem = getattr(spec, "pre_stem", None)
    if pre_stem is not None and pre_stem.rescaling:  # it expects raw pixels
        common["pixels"] = True
    return plan.architecture.task(plan, common)


def input_shapes(model, options: dict) -> list[tuple]:
    """The shape of one example for each input of the model; a side the model leaves open
    (None: a pre-stem that resizes or crops) takes the task's input_shape, else ANY_SIDE."""
    wanted = options.get("input_shape")
    shapes = []
    for tensor in model.inputs:
        shape = tuple(tensor.shape[1:])
        if any(side is None for side in shape):
            if wanted is not None and len(wanted) == len(shape):
                shape = tuple(
                    w if side is None else side for side, w in zip(shape, wanted, strict=True)
                )
            else:
                shape = tuple(ANY_SIDE if side is None else side for side in shape)
        shapes.append(shape)
    return shapes


def _input_batch(model, batch: int, rng, options: dict):
    """Images for every input of the model (a list when there are several): standard
    normal, or uniform pixels in [0, 255] when options say `pixels`."""
    pixels = options.get("pixels", False)
    arrays = [
        (
            rng.uniform(0, 255, (batch, *shape)) if pixels else rng.standard_normal((batch, *shape))
        ).astype("float32")
        for shape in input_shapes(model, options)
    ]
    return arrays[0] if len(arrays) == 1 else arrays


def _outputs(model) -> list:
    return list(model.outputs)


def classifier_task(model, batch: int, rng, options: dict) -> Batch:
    """Classifiers (one softmax output, or [main, aux1, ...]): random integer labels,
    sparse categorical cross-entropy on every output, weighted by options' loss_weights."""
    if isinstance(model.output, dict):
        raise StageError("train", "the model returns a dict of outputs: a heads task")
    outputs = _outputs(model)
    y = [rng.integers(0, out.shape[-1], size=(batch,)) for out in outputs]
    weights = list(options.get("loss_weights") or [1.0] * len(outputs))
    if len(weights) != len(outputs):
        raise StageError("train", f"{len(outputs)} outputs but {len(weights)} loss weights")
    losses = ["sparse_categorical_crossentropy"] * len(outputs)
    return Batch(_input_batch(model, batch, rng, options), y, losses, weights)


def _head_target(rng, batch: int, n_classes: int, activation: str):
    """(target, loss) for one classifier head: integer labels and sparse categorical
    cross-entropy for softmax, multi-hot 0/1 vectors and binary cross-entropy for sigmoid."""
    if activation == "sigmoid":
        target = rng.integers(0, 2, size=(batch, n_classes)).astype("float32")
        return target, "binary_crossentropy"
    return rng.integers(0, n_classes, size=(batch,)), "sparse_categorical_crossentropy"


def heads_task(model, batch: int, rng, options: dict) -> Batch:
    """A multi-output classifier (classifier.heads): a dict of outputs keyed by head name,
    each head its own targets and loss (by its activation), weighted by its loss_weight."""
    heads = options["heads"]
    names = [head["name"] for head in heads]
    output = model.output
    if not isinstance(output, dict) or sorted(output) != sorted(names):
        got = sorted(output) if isinstance(output, dict) else f"{len(model.outputs)} output(s)"
        raise StageError("train", f"the plan's heads are {names}, the model returns {got}")
    y, losses = [], []
    for head in heads:
        if output[head["name"]].shape[-1] != head["n_classes"]:
            raise StageError(
                "train",
                f"head {head['name']} has {output[head['name']].shape[-1]} units, "
                f"the plan {head['n_classes']}",
            )
        target, loss = _head_target(rng, batch, head["n_classes"], head["activation"])
        y.append(target)
        losses.append(loss)
    weights = list(options.get("loss_weights") or [1.0] * len(heads))
    x = _input_batch(model, batch, rng, options)
    return Batch(x, y, losses, weights, names)


def inspect_task(model, batch: int, rng, options: dict) -> Batch:
    """A model of no known kind, read from its outputs (a dict of them keyed by name): a
    2-D output whose rows are probabilities gets labels and cross-entropy, one of
    independent probabilities in (0, 1) (sigmoid) 0/1 targets and binary cross-entropy; an
    output shaped like the input is a reconstruction (mean squared error to the input);
    anything else regresses to random targets of its shape."""
    import numpy as np

    x = _input_batch(model, batch, rng, options)
    inputs = x if isinstance(x, list) else [x]
    probe = model(x, training=False)
    names = list(probe) if isinstance(probe, dict) else None
    if names is not None:
        probe = [probe[name] for name in names]
    probe = list(probe) if isinstance(probe, list | tuple) else [probe]
    y, losses = [], []
    for out in probe:
        out = np.asarray(_to_numpy(out), dtype="float32")
        rows = out.reshape(out.shape[0], -1)
        probabilities = out.ndim == 2 and np.all(rows >= 0) and np.allclose(rows.sum(1), 1, 1e-3)
        if probabilities:
            y.append(rng.integers(0, out.shape[-1], size=(batch,)))
            losses.append("sparse_categorical_crossentropy")
            continue
        if out.ndim == 2 and np.all((rows > 0) & (rows < 1)):
            y.append(rng.integers(0, 2, size=out.shape).astype("float32"))
            losses.append("binary_crossentropy")
            continue
        same = [a for a in inputs if a.shape == out.shape]
        y.append(same[0] if same else rng.standard_normal(out.shape).astype("float32"))
        losses.append("mean_squared_error")
    return Batch(x, y, losses, [1.0] * len(y), names)


def siamese_task(model, batch: int, rng, options: dict) -> Batch:
    """A Siamese twin: two images per example, a label 1 (same class) or 0 for the one
    sigmoid output, binary cross-entropy."""
    y = rng.integers(0, 2, size=(batch, 1)).astype("float32")
    x = _input_batch(model, batch, rng, options)
    return Batch(x, [y], ["binary_crossentropy"], [1.0])


def autoencoder_task(model, batch: int, rng, options: dict) -> Batch:
    """An autoencoder: reproduce its input (images in [0, 1], or raw pixels in [0, 255]
    when its pre-stem rescales them), mean squared error. Behind a pre-stem (deterministic
    steps only: the spec refuses random ones) the target is the pre-stemmed image, what
    the model reconstructs: the model up to its last pre-stem layer (pre_stem_*), at
    inference."""
    shape = input_shapes(model, options)[0]
    if options.get("pixels", False):
        x = rng.uniform(0, 255, (batch, *shape)).astype("float32")
    else:
        x = rng.random((batch, *shape)).astype("float32")
    pre_stem = [layer for layer in model.layers if layer.name.startswith("pre_stem_")]
    if not pre_stem:
        return Batch(x, [x], ["mean_squared_error"], [1.0])
    import keras

    preprocess = keras.Model(model.input, pre_stem[-1].output)
    target = keras.ops.convert_to_numpy(preprocess(x, training=False)).astype("float32")
    return Batch(x, [target], ["mean_squared_error"], [1.0])


def detector_api(module):
    """Where an emitted detector's helpers live: the module (procedural) or its one class
    (oop, as static methods); None when the file has no training_targets."""
    if module is None:
        return None
    helpers = ("training_targets", "loss_targets")  # loss_targets: Faster R-CNN's
    if any(hasattr(module, helper) for helper in helpers):
        return module
    for value in vars(module).values():
        if isinstance(value, type) and value.__module__ == module.__name__:
            if any(hasattr(value, helper) for helper in helpers):
                return value
    return None


def detector_task(model, batch: int, rng, options: dict) -> Batch:
    """A region-based detector (R-CNN, Fast R-CNN): inputs [images, boxes], outputs
    per-region class scores and box deltas. As tests/test_detectors.py trains them: noise
    images with 1-3 rectangles each (a class brightens one channel), the file's
    sliding_window_proposals, its training_targets (sampled regions, their labels or SVM
    targets and box targets) and the losses its compile_for_training sets (options["api"]:
    the module or class holding those helpers, set by verify_file)."""
    import inspect

    import numpy as np

    api = options.get("api")
    if api is None or not hasattr(api, "training_targets"):
        raise StageError("train", "a detector file without training_targets")
    if len(model.inputs) != 2 or len(model.outputs) != 2:
        raise StageError("train", "a detector takes [images, boxes] and returns two outputs")
    height, width, channels = input_shapes(model, options)[0]
    n_regions = model.inputs[1].shape[1]
    n_classes = model.outputs[1].shape[-1] // 4
    images = rng.normal(0, 0.3, (batch, height, width, channels)).astype("float32")
    gt_boxes, gt_labels = [], []
    for index in range(batch):
        boxes, labels = [], []
        for _ in range(int(rng.integers(1, 4))):
            w = int(rng.integers(max(2, width // 5), max(3, width // 2)))
            h = int(rng.integers(max(2, height // 5), max(3, height // 2)))
            x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            label = int(rng.integers(0, n_classes))
            images[index, y : y + h, x : x + w, label % channels] += 1.5
            boxes.append([x, y, x + w, y + h])
            labels.append(label)
        gt_boxes.append(np.array(boxes, "float32"))
        gt_labels.append(np.array(labels, "int32"))
    proposals = [api.sliding_window_proposals(height, width, max(64, n_regions))] * batch
    # R-CNN's training_targets also takes n_classes (its per-class SVM targets).
    takes_classes = "n_classes" in inspect.signature(api.training_targets).parameters
    extra = (n_classes,) if takes_classes else ()
    boxes, targets, box_targets = api.training_targets(
        proposals, gt_boxes, gt_labels, *extra, n_regions=n_regions, seed=1
    )
    api.compile_for_training(model)  # its losses: [class loss, box loss]
    losses = list(model.loss)
    weights = list(options.get("loss_weights") or [1.0, 1.0])
    return Batch([images, boxes], [targets, box_targets], losses, weights)


def faster_rcnn_task(model, batch: int, rng, options: dict) -> Batch:
    """Faster R-CNN: inputs [images, gt_boxes, gt_labels] (up to 3 boxes per image, padded
    with label 0), outputs its four losses, computed inside the model; the targets are the
    file's loss_targets placeholders and the losses its compile_for_training sets. Images
    as detector_task makes them (a class brightens one channel)."""
    import numpy as np

    api = options.get("api")
    if api is None or not hasattr(api, "loss_targets"):
        raise StageError("train", "a Faster R-CNN file without loss_targets")
    if len(model.inputs) != 3 or len(model.outputs) != 4:
        raise StageError(
            "train", "Faster R-CNN takes [images, gt_boxes, gt_labels] and returns four losses"
        )
    height, width, channels = input_shapes(model, options)[0]
    n_classes = model.get_layer("head").outputs[1].shape[-1] // 4
    images = rng.normal(0, 0.3, (batch, height, width, channels)).astype("float32")
    gt_boxes = np.zeros((batch, 3, 4), "float32")
    gt_labels = np.zeros((batch, 3), "int32")
    for index in range(batch):
        for slot in range(int(rng.integers(1, 4))):
            w = int(rng.integers(max(2, width // 5), max(3, width // 2)))
            h = int(rng.integers(max(2, height // 5), max(3, height // 2)))
            x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            label = int(rng.integers(1, n_classes + 1))
            images[index, y : y + h, x : x + w, label % channels] += 1.5
            gt_boxes[index, slot] = [x, y, x + w, y + h]
            gt_labels[index, slot] = label
    api.compile_for_training(model)
    weights = list(options.get("loss_weights") or [1.0] * 4)
    return Batch([images, gt_boxes, gt_labels], api.loss_targets(batch), list(model.loss), weights)


def tasks() -> dict[str, Callable]:
    """Task kind -> batch maker: the registered architectures' (`modelgen verify` picks the
    kind with task_for_plan), and "auto" for a file of no known kind."""
    from . import pieces  # noqa: F401  (registers every architecture)
    from .registry import task_batches

    return {**task_batches(), "auto": inspect_task}


def __getattr__(name: str):
    if name == "TASKS":  # computed on first use: the architectures import this module
        return tasks()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------- loading and building


# The pip package that provides a module keras or its backend needs, where the two differ.
PIP_PACKAGES = {"jaxlib": "jax", "tensorflow_cpu": "tensorflow", "PIL": "pillow", "yaml": "pyyaml"}


def missing_module(exc: BaseException) -> str:
    """The reason for a failed `import keras`: a module that is not installed names itself,
    the interpreter, the backend and the pip command that installs it."""
    import os

    name = getattr(exc, "name", None)
    if not isinstance(exc, ModuleNotFoundError) or not name:
        return _describe(exc)
    top = name.split(".")[0]
    backend = os.environ.get("KERAS_BACKEND") or "tensorflow"
    what = "keras" if top == "keras" else f"{top} (needed by keras with KERAS_BACKEND={backend})"
    return (
        f"{what} is not installed for {sys.executable}; install it with: "
        f"{sys.executable} -m pip install {PIP_PACKAGES.get(top, top)}"
    )


def import_keras():
    """keras, or StageError("import") naming what is missing and how to install it."""
    try:
        import keras
    except Exception as exc:  # noqa: BLE001 - a missing module, or a backend that fails
        raise StageError("import", missing_module(exc)) from exc
    if not _FROZEN:
        # The framework's modules and caches (hundreds of thousands of objects) live as long
        # as the process: out of the cyclic collector's sight, the automatic collections
        # while a model is built stop walking them (three small builds on tensorflow: 1.1 s
        # of 8.3 s in the collector, 0.5 s frozen).
        _FROZEN.append(True)
        gc.collect()
        gc.freeze()
    return keras


_FROZEN: list = []  # [True] once import_keras has frozen the framework's objects


def data_parallel(keras, n: int) -> list[str]:
    """Train on n devices with Keras 3's own distribution API: keras.distribution's
    DataParallel (a replica of the model per device, each batch split between them) over
    the first n devices; returns their names. StageError("build") where there are fewer.
    On a CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N makes N devices."""
    devices = keras.distribution.list_devices()
    if len(devices) < n:
        raise StageError(
            "build",
            f"--devices {n}: {len(devices)} device(s) here ({', '.join(devices)}); on a CPU, "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={n} makes {n}",
        )
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices[:n]))
    return devices[:n]


def load_module(path: Path):
    """Import an emitted file as a module of its own."""
    try:
        spec = importlib.util.spec_from_file_location(f"_modelgen_run_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - anything the file raises is the report
        raise StageError("import", _describe(exc)) from exc
    return module


def build_from_module(module, **kwargs):
    """The keras.Model of either style: build_model(**kwargs) (procedural) or the one class
    the file defines, whose instance holds .model (oop)."""
    try:
        if hasattr(module, "build_model"):
            return module.build_model(**kwargs)
        classes = [
            value
            for value in vars(module).values()
            if isinstance(value, type) and value.__module__ == module.__name__
        ]
        if len(classes) != 1:
            raise TypeError("the file defines neither build_model nor exactly one class")
        return classes[0](**kwargs).model
    except Exception as exc:  # noqa: BLE001
        raise StageError("build", _describe(exc)) from exc


def _describe(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 400 else text[:397] + "..."


def _to_numpy(value):
    import keras

    return keras.ops.convert_to_numpy(value)


# --------------------------------------------------------------------- gradients and training


def total_loss(batch: Batch) -> Callable:
    """loss(y, outputs) -> the weighted sum of the mean per-output losses (keras.ops)."""
    import keras

    functions = [keras.losses.get(name) for name in batch.losses]

    def loss(y, result):
        if isinstance(result, dict):
            result = [result[name] for name in batch.names]
        result = list(result) if isinstance(result, list | tuple) else [result]
        terms = [
            w * keras.ops.mean(fn(target, out))
            for w, fn, target, out in zip(batch.loss_weights, functions, y, result, strict=True)
        ]
        return sum(terms[1:], terms[0])

    return loss


def gradients(model, batch: Batch, training: bool = False):
    """(loss, [gradient of each trainable variable]) on this backend, as numpy (None where
    the backend found no path from the variable to the loss)."""
    import keras

    loss_fn = total_loss(batch)
    variables = model.trainable_variables
    x = keras.tree.map_structure(keras.ops.convert_to_tensor, batch.x)
    y = [keras.ops.convert_to_tensor(target) for target in batch.y]
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=training))
            return loss, tape.gradient(loss, variables)

        loss, grads = step(x, y)
    elif backend == "jax":
        import jax

        def loss_of(trainable, non_trainable, x, y):
            out, _ = model.stateless_call(trainable, non_trainable, x, training=training)
            return loss_fn(y, out)

        trainable = [v.value for v in variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        loss, grads = jax.jit(jax.value_and_grad(loss_of))(trainable, non_trainable, x, y)
    elif backend == "torch":
        model.zero_grad(set_to_none=True)
        loss = loss_fn(y, model(x, training=training))
        loss.backward()
        grads = [v.value.grad for v in variables]
    else:
        raise StageError("train", f"no gradient check for the {backend} backend")
    return float(_to_numpy(loss)), [None if g is None else _to_numpy(g) for g in grads]


def check_gradients(model, batch: Batch) -> None:
    """Every trainable variable influences the loss: a finite, not all-zero gradient.
    Measured in inference mode (BN on its moving statistics): in training mode a bias that
    feeds a BatchNormalization is cancelled by the batch mean, so its gradient is zero."""
    import numpy as np

    loss, grads = gradients(model, batch, training=False)
    if not math.isfinite(loss):
        raise StageError("train", f"the loss is {loss} before training")
    dead = []
    for variable, grad in zip(model.trainable_variables, grads, strict=True):
        if grad is None or not np.all(np.isfinite(grad)) or not np.any(grad != 0):
            if grad is None:
                what = "no"
            else:
                what = "a non-finite" if np.any(~np.isfinite(grad)) else "an all-zero"
            dead.append(f"{variable.path} ({what} gradient)")
    if dead:
        more = f" and {len(dead) - 3} more" if len(dead) > 3 else ""
        raise StageError("train", f"no useful gradient for {', '.join(dead[:3])}{more}")


@dataclass
class Result:
    """What one run measured."""

    params: int = 0
    trainable: int = 0
    output_shapes: list = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)

    @property
    def median_step(self) -> float:
        """The median step time, the first (compiling) step left out when there are more."""
        times = self.step_seconds[1:] or self.step_seconds
        return statistics.median(times) if times else float("nan")


def recipe_or_default(recipe: dict | None) -> dict:
    """task["recipe"] (registry.Recipe.as_task()), or registry.DEFAULT_RECIPE's for a task
    without one (an emitted file of no known kind)."""
    from .registry import DEFAULT_RECIPE

    return recipe or DEFAULT_RECIPE.as_task()


def task_batch(model, module, task: dict, batch_size: int, seed: int = 0) -> Batch:
    """The task's synthetic batch for a built model: its kind's batch maker (TASKS), given
    the module's detector helpers; "auto" (an emitted file) is read off those helpers and
    the model's inputs, else off its outputs (inspect_task)."""
    import numpy as np

    kind = task.get("kind", "auto")
    api = detector_api(module)
    if kind == "auto" and api is not None and len(model.inputs) == 2:
        kind = "detector"  # an emitted detector file: its own helpers make the targets
    elif kind == "auto" and api is not None and len(model.inputs) == 3:
        kind = "faster_rcnn"
    make = tasks().get(kind, inspect_task)
    return make(model, batch_size, np.random.default_rng(seed), {**task, "api": api})


def optimizer_for(recipe: dict | None):
    """The recipe's Keras optimizer (recipe_or_default)."""
    import keras

    recipe = recipe_or_default(recipe)
    config = {"learning_rate": recipe["learning_rate"]}
    return keras.optimizers.get({"class_name": recipe["optimizer"], "config": config})


def train(model, batch: Batch, steps: int, jit_compile="auto", progress=True, recipe=None):
    """`steps` optimizer steps of the recipe's optimizer (optimizer_for) on the same
    synthetic batch; returns the loss and the wall time of every step."""
    import keras

    model.compile(
        optimizer=optimizer_for(recipe),
        loss=batch.keyed(batch.losses) if batch.names else batch.losses,
        loss_weights=batch.keyed(batch.loss_weights) if batch.names else batch.loss_weights,
        jit_compile=jit_compile,
    )
    bar = keras.utils.Progbar(steps, stateful_metrics=["loss"]) if progress else None
    y = batch.keyed(batch.y)
    losses, times = [], []
    for step in range(steps):
        start = time.perf_counter()
        logs = model.train_on_batch(batch.x, y, return_dict=True)
        loss = float(logs["loss"])  # reading it waits for the step to finish
        times.append(time.perf_counter() - start)
        losses.append(loss)
        if bar is not None:
            bar.update(step + 1, values=[("loss", loss)])
    return losses, times


def set_random_seed(keras, seed: int) -> None:
    """keras.utils.set_random_seed (Python, NumPy, Keras and the backend's own seeds),
    without importing TensorFlow on another backend: where TensorFlow is installed, Keras
    imports it to seed it too (for tf.data), which costs a torch or jax run about 2.5 s of
    start-up and seeds nothing the harness uses. A None entry in sys.modules is Python's
    way to say "not importable"; it is taken back at once, and Keras remembers the answer,
    so the import is skipped for the rest of this run."""
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    sys.modules["tensorflow"] = None
    try:
        keras.utils.set_random_seed(seed)
    finally:
        del sys.modules["tensorflow"]


def verify_file(
    path: Path,
    task: dict,
    build_kwargs: dict,
    steps: int,
    batch_size: int,
    seed: int = 0,
    progress: bool = True,
    out=print,
) -> Result:
    """Import, build, check gradients and train one emitted file; StageError on failure."""
    keras = import_keras()
    import numpy as np

    set_random_seed(keras, seed)
    module = load_module(path)
    model = build_from_module(module, **build_kwargs)
    result = Result(model.count_params())
    result.trainable = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    result.output_shapes = [tuple(o.shape) for o in model.outputs]
    out(f"  built: {result.params:,} parameters ({result.trainable:,} trainable)")
    for name, shape in zip(model.output_names, result.output_shapes, strict=True):
        out(f"  output {name}: {shape}")

    try:
        batch = task_batch(model, module, task, batch_size, seed)
        check_gradients(model, batch)
        # XLA on a CPU costs more than it saves on tensorflow; on jax, "auto" compiles
        # unless the model cannot be (a pre-stem's random augmentation), with no warning.
        jit = "auto" if keras.backend.backend() == "jax" else False
        result.losses, result.step_seconds = train(
            model, batch, steps, jit, progress, task.get("recipe")
        )
    except StageError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise StageError("train", _describe(exc)) from exc
    bad = [loss for loss in result.losses if not math.isfinite(loss)]
    if bad or not result.losses:
        raise StageError("train", f"the loss is not finite: {result.losses}")
    out(f"  {training_line(result, batch_size)}")
    if len(result.losses) > 1 and not result.losses[-1] < result.losses[0]:
        recipe = recipe_or_default(task.get("recipe"))
        how = f" ({recipe['optimizer']}, learning rate {recipe['learning_rate']:g})"
        raise StageError(
            "train",
            f"the loss did not fall in {steps} steps on one batch{how}: "
            f"{result.losses[0]:.4f} -> {result.losses[-1]:.4f}",
        )
    return result


def training_line(result: Result, batch_size: int) -> str:
    """The report's training line: the loss before and after, the first step apart (it
    includes compiling the step: tracing, XLA) from the median of the others."""
    steps = len(result.losses)
    first = result.step_seconds[0] * 1000
    line = (
        f"trained {steps} step{'s' if steps != 1 else ''} (batch {batch_size}): "
        f"loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}, "
        f"first step {first:.1f} ms (compiling included)"
    )
    if steps > 1:
        line += f", median of the others {result.median_step * 1000:.1f} ms"
    else:  # train_on_batch reports each step's loss before its update
        line += "; one step: whether the loss falls needs two"
    return line


# --------------------------------------------------------------------- the child process


def main(argv: list[str]) -> int:
    """python -m generator.harness JOBS.json: run every job, one report line each.

    JOBS.json holds {"steps", "batch", "devices", "jobs": [{"label", "path", "task",
    "build"}]}; exit 0 only if every job passed."""
    from .errors import printable  # a label or an exception's text may hold ESC, \x00 ...

    config = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    devices = config.get("devices", 1)
    try:  # once: keras (or its backend) missing is one line per model, not a retry each
        keras = import_keras()
        if devices > 1:  # before any model is built: its variables go to every device
            names = data_parallel(keras, devices)
            print(f"verify: keras.distribution.DataParallel over {', '.join(names)}", flush=True)
    except StageError as exc:
        reason = printable(exc.reason)
        for job in config["jobs"]:
            label = printable(job["label"])
            sys.stderr.write(f"error: {label}: verify failed at {exc.stage}: {reason}\n")
        return 1
    failed = 0
    for job in config["jobs"]:
        label = printable(job["label"])
        print(f"{label}:", flush=True)
        try:
            verify_file(
                Path(job["path"]),
                job["task"],
                job["build"],
                config["steps"],
                config["batch"],
                progress=config.get("progress", True),
            )
        except StageError as exc:
            failed += 1
            sys.stdout.flush()
            reason = printable(exc.reason)
            sys.stderr.write(f"error: {label}: verify failed at {exc.stage}: {reason}\n")
            sys.stderr.flush()
            continue
        print(f"  ok: {label}", flush=True)
    if failed:
        sys.stderr.write(f"verify: {failed} of {len(config['jobs'])} model(s) failed\n")
    return 1 if failed else 0


if __name__ == "__main__":
    # Run the package's own module, not this __main__ copy: the architectures' batch
    # makers (registered from generator.harness) and main() then share one module.
    from generator.harness import main as _main

    sys.exit(_main(sys.argv[1:]))
