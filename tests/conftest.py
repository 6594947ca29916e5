"""Shared helpers: load golden files as modules, build either style, reference counts."""

import contextlib
import copy
import importlib.util
import io
import itertools
import os
import re
import runpy
import sys
import time
from functools import cache
from pathlib import Path
from typing import NamedTuple
from unittest import mock

import pytest

from generator.cli import main
from generator.errors import SpecError
from generator.pipeline import plan_for
from generator.pretrained import keras_builder
from generator.registry import detectors
from generator.spec import preset_names

# Before anything imports keras (this module does not; tests import it after conftest).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# XLA's CPU backend without its LLVM optimisation passes and with its older, quicker
# element-wise emitters, for this process and every child it starts (the jax backend
# children, `modelgen verify` on jax): on the small models the tests build, compiling is
# most of a jax step or call. Measured one after the other on this machine: `modelgen
# verify squeezenet1_1 multitask_resnet` on jax 54 s by default, 31 s at level 0 (an earlier
# hour), 23.5 -> 16.0 s with the emitters off too; the backend-parity jax child (66 models)
# 86 -> 75 s for the emitters alone. The same losses to four places, outputs within 4e-7 of
# tensorflow's. What the tests compare does not depend on how well the code is optimised;
# users' runs are not touched (tensorflow accepts both flags).
XLA_TEST_FLAGS = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
if XLA_TEST_FLAGS not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_TEST_FLAGS}".strip()

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "golden"
STYLES = ("procedural", "oop")
PRESETS = tuple(preset_names())
PARAM_COUNTS_MD = Path(__file__).parents[2] / "shared/reference/param_counts.md"

_module_ids = itertools.count()


def golden_path(preset: str, style: str) -> Path:
    return GOLDEN / style / f"{preset}.py"


def load_golden(preset: str, style: str):
    """Import golden/<style>/<preset>.py as a fresh module (its own, unique name)."""
    path = golden_path(preset, style)
    name = f"_golden_{style}_{preset}_{next(_module_ids)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def golden_module(preset: str, style: str):
    """The golden module, imported once per process (tests must not mutate it)."""
    return load_golden(preset, style)


@cache
def plan(preset: str):
    return plan_for(preset)


# Square sides tried, smallest first, for a preset's small test input (see small_input).
SMALL_SIDES = (64, 75, 96, 128, 160, 224, 299)


@cache
def small_input(preset: str) -> tuple[int, int, int]:
    """A small input the preset builds at with its default heads: 64x64 for most, else the
    smallest of SMALL_SIDES its plan accepts (Inception v3's valid convolutions need 75x75,
    Inception v1's auxiliary classifiers a 5x5 tap). A preset made for inputs under 64x64
    (the CIFAR networks' 32x32) takes half its own height and width where its plan accepts
    that, else its own: 64x64 would be four times its full-size work, and TensorFlow's CPU
    gradient of a grouped convolution (ResNeXt-29's 1,024 and 2,048 channels) costs tens of
    seconds at 32x32."""
    height, width, channels = plan(preset).spec.input_shape
    shapes = [(side, side, channels) for side in SMALL_SIDES]
    if max(height, width) < SMALL_SIDES[0]:
        shapes = [(height // 2, width // 2, channels), (height, width, channels)]
    for shape in shapes:
        try:
            plan_for(preset, [f"input_shape={list(shape)}"])
        except SpecError:
            continue
        return shape
    raise AssertionError(f"{preset} plans at none of the shapes {shapes}")


def architecture(preset: str) -> str:
    """The preset's macro-architecture: classifier, siamese, autoencoder, rcnn or fast_rcnn."""
    return plan(preset).spec.architecture


DETECTORS = detectors()  # the registered region-based detectors


def is_detector(preset: str) -> bool:
    """A region-based detector: rcnn, fast_rcnn (inputs [images, boxes], outputs per region)
    or faster_rcnn (inputs [images, gt_boxes, gt_labels], outputs its four losses)."""
    return architecture(preset) in DETECTORS


# Detectors built small by the generic tests: few regions, and the region head fed small
# (R-CNN warps to 32x32 instead of 227x227, Fast R-CNN pools to 2x2 instead of 7x7), so that
# a training step on CPU takes seconds. test_detectors.py builds them at full size.
SMALL_DETECTOR = {
    "rcnn": ({"n_regions": 3}, {"crop_size": 32}),
    "fast_rcnn": ({"n_regions": 3}, {"pool_size": 2}),
    # Faster R-CNN's regions are sampled inside the model: a small pool and small anchors.
    "faster_rcnn": ({}, {"pool_size": 2, "anchor_scales": [16.0, 32.0]}),
}


def small_kwargs(preset: str, n_classes: int = 10, metaparameters=None) -> dict:
    """Build arguments for a small model of the preset: its small input and, for a
    classifier or a detector, n_classes classes (the other architectures have no classes);
    a detector also gets few regions and a small region head (SMALL_DETECTOR), under the
    given metaparameters. Other metaparameters pass through as they are."""
    kwargs = {"input_shape": small_input(preset)}
    kind = architecture(preset)
    if kind in DETECTORS or (kind == "classifier" and not plan(preset).heads):
        kwargs["n_classes"] = n_classes  # named heads have their own
    if kind in DETECTORS:
        extra, sizes = SMALL_DETECTOR[kind]
        kwargs.update(extra, metaparameters={**sizes, **(metaparameters or {})})
    elif metaparameters is not None:
        kwargs["metaparameters"] = metaparameters
    return kwargs


def sample_inputs(
    preset: str, shape, batch: int = 2, seed: int = 0, normal: bool = True, n_regions=None
):
    """What the model takes for a batch of `shape` images: the batch itself, for a Siamese
    model a pair of different batches [left, right], for a detector [images, boxes] with
    n_regions valid boxes (x1 < x2, y1 < y2) inside each image (default: as many as
    small_kwargs builds it with)."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def images():
        draw = rng.standard_normal if normal else rng.random
        return draw((batch, *shape), dtype=np.float32)

    if architecture(preset) == "faster_rcnn":  # images, gt_boxes (2 per image), gt_labels
        height, width = shape[:2]
        corners = rng.uniform(0, 1, (batch, 2, 2, 2)) * [width, height]
        boxes = np.concatenate([corners.min(-2), corners.max(-2)], -1).astype(np.float32)
        labels = np.array([[1, 2]] * batch, dtype=np.int32)
        labels[0, 1] = 0  # the first image has one box (and one of padding)
        return [images(), boxes, labels]
    if is_detector(preset):
        if n_regions is None:
            n_regions = SMALL_DETECTOR[architecture(preset)][0]["n_regions"]
        height, width = shape[:2]
        corners = rng.uniform(0, 1, (batch, n_regions, 2, 2)) * [width, height]
        boxes = np.concatenate([corners.min(-2), corners.max(-2)], -1).astype(np.float32)
        return [images(), boxes]
    return [images(), images()] if architecture(preset) == "siamese" else images()


def output_shapes(preset: str, shape, batch: int = 2, n_classes: int = 10) -> list[tuple]:
    """The shape of each of the model's outputs (built with small_kwargs) for a batch of
    `shape` images: class scores (Inception's auxiliary outputs alike; one width per
    named head with classifier.heads), P(same class) per pair, the reconstruction, or a
    detector's per-region class scores and box deltas."""
    kind = architecture(preset)
    if kind == "faster_rcnn":  # the four losses, one per image each
        return [(batch,)] * 4
    if kind in DETECTORS:  # per region: class scores (+ background), 4 box deltas per class
        regions = SMALL_DETECTOR[kind][0]["n_regions"]
        scores = n_classes + (kind == "fast_rcnn")
        return [(batch, regions, scores), (batch, regions, 4 * n_classes)]
    if kind == "classifier" and plan(preset).heads:
        return [(batch, head.n_classes) for head in plan(preset).heads]
    if kind == "classifier":
        aux = plan(preset).spec.classifier.aux
        return [(batch, n_classes)] * (1 + (plan(preset).n_taps if aux and aux.include else 0))
    return [{"siamese": (batch, 1), "autoencoder": (batch, *shape)}[kind]]


def backend_child_env(backend: str) -> dict:
    """The environment of a child process the tests start on a Keras backend: one OpenMP
    thread on torch and jax (CI runs two test workers on two cores), quiet TensorFlow."""
    threads = {} if backend == "tensorflow" else {"OMP_NUM_THREADS": "1"}
    return {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", **threads}


@contextlib.contextmanager
def cheap_initial_values():
    """Inside, Keras' random initializers give zeros: for builds whose initial values
    nothing reads (a parameter count, layer names and shapes) or that are overwritten at
    once (keras.saving.load_model, set_weights). On tensorflow each random initializer runs
    a random op and draws a seed (0.7 ms for Glorot uniform, 1.4 ms for He normal on a 3x3
    convolution's kernel, against 0.03 ms for zeros; creating the variable itself costs
    another 0.7 ms). Test-only: patches the tensorflow backend's random module (the one
    keras.random and the initializers call), and restores it on the way out."""
    import keras

    if keras.backend.backend() != "tensorflow":
        yield
        return
    import tensorflow as tf
    from keras.src.backend.tensorflow import random as backend_random

    def zeros(shape, *args, dtype=None, seed=None, **kwargs):
        return tf.zeros(shape, dtype=keras.backend.standardize_dtype(dtype))

    names = ("normal", "uniform", "truncated_normal")
    real = {name: getattr(backend_random, name) for name in names}
    try:
        for name in names:
            setattr(backend_random, name, zeros)
        yield
    finally:
        for name, function in real.items():
            setattr(backend_random, name, function)


def assert_edit_is_refused(preset: str, edit, message: str) -> None:
    """The preset's raw spec, changed by edit(data), fails validation with one line that
    names the file and holds `message` (the field path and the reason)."""
    from generator.spec import load_raw, validate

    data = load_raw(preset)[0]
    edit(data)
    with pytest.raises(SpecError) as info:
        validate(data, "spec.yaml")
    text = str(info.value)
    assert "\n" not in text, text
    assert text.startswith("spec.yaml: ") and message in text, text


def as_outputs(result) -> list:
    """A model's call result as a list, one entry per output: a model with auxiliary
    classifiers (Inception, include_aux=True) returns [main, aux1, ...], one with
    classifier.heads a dict {head name: output} (in the heads' order)."""
    if isinstance(result, dict):
        return list(result.values())
    return list(result) if isinstance(result, list | tuple) else [result]


def model_class(module, preset: str):
    """The OOP file's class, named spec.class_name."""
    return getattr(module, plan(preset).spec.class_name)


def build(preset: str, style: str, metaparameters=None, module=None, **kwargs):
    """A keras.Model from either style; kwargs are build_model's / __init__'s arguments.

    metaparameters is a dict: build_model(metaparameters=...) or Class(**metaparameters).
    """
    module = module or golden_module(preset, style)
    if style == "procedural":
        if metaparameters is not None:
            kwargs["metaparameters"] = metaparameters
        return module.build_model(**kwargs)
    if style == "oop":
        return model_class(module, preset)(**kwargs, **(metaparameters or {})).model
    raise ValueError(f"unknown style {style!r}")


def default_metaparameters(preset: str, style: str) -> dict:
    module = golden_module(preset, style)
    if style == "procedural":
        return module.METAPARAMETERS
    return model_class(module, preset).metaparameters


_ROW = re.compile(r"^\|(?P<cells>.*)\|\s*$")


def _row_presets(cell: str, known=PRESETS) -> list[str]:
    """The presets a row names: "resnet50 (v1)" -> [resnet50]; "wide_resnet50_2 /
    wide_resnet101_2" -> both; an abbreviated later name, "_0_75" in "mobilenet / _0_75"
    or "_large" in "mobilenet_v3_small / _large", is the first name's longest prefix (cut
    at an underscore, the whole name included) that with it names a known preset. A row
    that abbreviates otherwise ("convnext_tiny / small", "efficientnet_b0 ... b7") or
    whose abbreviations name no preset yet gives [] until they do, and is read by its own
    test."""
    names = [name.strip().split()[0] for name in cell.split(" / ") if name.strip()]
    if not names or "..." in cell:
        return []
    first, found = names[0], [names[0]]
    parts = first.split("_")
    prefixes = ["_".join(parts[:cut]) for cut in range(len(parts), 0, -1)]
    for name in names[1:]:
        if name.startswith("_"):
            name = next((p + name for p in prefixes if p + name in known), None)
            if name is None:
                return []
        found.append(name)
    family = re.match(r"[a-z]+", first)
    if family is None or any(not name.startswith(family.group(0)) for name in found[1:]):
        return []
    return found


def parse_param_counts(path: Path = PARAM_COUNTS_MD) -> dict[str, tuple[str, int]]:
    """The reference tables -> {preset: (compare, count)}; compare is total or trainable.
    Rows of four cells (preset | reference | compare | count) or five (... | input), one
    count per preset the row names, "a / b" where it names several."""
    counts: dict[str, tuple[str, int]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line.strip())
        if not match:
            continue
        cells = [cell.strip() for cell in match.group("cells").split("|")]
        if len(cells) not in (4, 5) or not cells[0]:
            continue
        compare = cells[2]
        numbers = [number.strip().replace(",", "") for number in cells[3].split(" / ")]
        if compare not in ("total", "trainable") or not all(n.isdigit() for n in numbers):
            continue  # the header and the |---| separator row
        presets = _row_presets(cells[0])
        if len(presets) != len(numbers):
            continue
        for preset, number in zip(presets, numbers, strict=True):
            assert preset not in counts, f"{preset} has two rows in {path}"
            counts[preset] = (compare, int(number))
    return counts


@pytest.fixture(scope="session")
def param_counts():
    assert PARAM_COUNTS_MD.is_file(), f"missing reference table {PARAM_COUNTS_MD}"
    counts = parse_param_counts()
    assert counts, f"no rows parsed from {PARAM_COUNTS_MD}"
    return counts


_FROZEN: list = []  # [True] once the imports' objects are frozen (release_memory)


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Reset Keras' global state (layer-name counters, graphs) around every test.

    Keras is not imported here: tests that never touch it (spec, CLI) stay framework-free.
    The full garbage collection that frees a built network's memory costs about half a
    second with TensorFlow loaded, so it runs only after tests that did real work, and
    then hands the freed heap back to the system (release_memory).
    """
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session(free_memory=False)
        if not _FROZEN:  # the first test after the framework imports: freeze what they made
            _FROZEN.append(True)
            release_memory()
    start = time.perf_counter()
    yield
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session(free_memory=False)
        if time.perf_counter() - start > 0.5:
            release_memory()


# --------------------------------------------------------------------------- reduced depth
#
# The checks that need the architecture, not the size (one training step, style equivalence,
# the .keras round trip, backend parity, verify) build the deep siblings of a family at
# reduced depth: a preset whose family has a member with the same block type and fewer
# blocks builds with at most MAX_DEPTH blocks (or layers) per group. Every block kind, every
# shortcut, every width and stride and the names of the first blocks stay; what the depth
# adds (the count, the names of the later blocks) is held at full size by the reference
# count, the plan and keras.applications' names (test_models.py).

MAX_DEPTH = 2  # blocks (or layers) per group: a group's first block and one after it
MAX_UNITS = 64  # fc and embedding layers (shallow(units=True), for backend parity)


def shallow(metaparameters: dict, units: bool = False) -> dict:
    """The metaparameters, shallower: at most MAX_DEPTH blocks or layers per group
    (Inception's groups keep their blocks up to the last auxiliary tap) and, with units,
    dense and embedding layers of at most MAX_UNITS units. Widths, strides and the kinds
    of block are kept. The argument is not changed."""
    meta = copy.deepcopy(metaparameters)
    for group in meta.get("groups", []):
        for key in ("n_blocks", "n_layers"):
            if isinstance(group.get(key), int):
                group[key] = min(group[key], MAX_DEPTH)
        if isinstance(group.get("blocks"), list):
            keep = max(MAX_DEPTH, max(group.get("aux_after") or [-1]) + 1)
            group["blocks"] = group["blocks"][:keep]
    if units and "dense_units" in meta:
        meta["dense_units"] = [min(n, MAX_UNITS) for n in meta["dense_units"]]
    if units and "embedding_units" in meta:
        meta["embedding_units"] = min(meta["embedding_units"], MAX_UNITS)
    return meta


def depth(preset: str) -> int:
    """Blocks (or layers) over all the learner's groups, as the preset ships."""
    learner = getattr(plan(preset).spec, "learner", None)
    total = 0
    for group in getattr(learner, "groups", None) or []:
        for key in ("n_blocks", "n_layers"):
            total += getattr(group, key, None) or 0
        total += len(getattr(group, "blocks", None) or [])
    return total


def sibling_key(preset: str) -> tuple:
    spec = plan(preset).spec
    learner = getattr(spec, "learner", None)
    return (spec.architecture, spec.family, getattr(learner, "block", None))


@cache
def deep_siblings() -> frozenset[str]:
    """The presets with a shallower sibling: same architecture, family and block type."""
    deep = set()
    for preset in PRESETS:
        if any(
            sibling_key(other) == sibling_key(preset) and depth(other) < depth(preset)
            for other in PRESETS
        ):
            deep.add(preset)
    return frozenset(deep)


def reduced_metaparameters(preset: str, style: str):
    """shallow() of the style's own metaparameters for a deep sibling, else None."""
    if preset not in deep_siblings():
        return None
    return shallow(default_metaparameters(preset, style))


def reduced_depth_sets(preset: str) -> list[str]:
    """--set items that build a deep sibling (deep_siblings()) at reduced depth: at
    most MAX_DEPTH blocks (or layers) per group, as the other architecture checks do."""
    if preset not in deep_siblings():
        return []
    sets = []
    for index, group in enumerate(plan(preset).spec.learner.groups):
        for key in ("n_blocks", "n_layers"):
            if (getattr(group, key, None) or 0) > MAX_DEPTH:
                sets.append(f"learner.groups.{index}.{key}={MAX_DEPTH}")
    return sets


def reduced_kwargs(preset: str, style: str, n_classes: int = 10) -> dict:
    """small_kwargs(), and reduced depth for a deep sibling (cut from that style's own
    metaparameters)."""
    return small_kwargs(preset, n_classes, reduced_metaparameters(preset, style))


def shallow_kwargs(preset: str, style: str, n_classes: int = 10) -> dict:
    """small_kwargs() at shallow() depth for every preset (a family's shallowest member
    too: resnet50 at 2 blocks a group, densenet121 at 2 layers a dense block), cut from that
    style's own metaparameters; a detector's small region head (SMALL_DETECTOR) kept. The
    build the architecture checks use (training step, style equivalence, round trip), as
    backend parity does (test_backends.shallow): every block kind, shortcut, width and
    stride is there; each block's later repeats, which add only more of the same, are held
    at full size by the count, keras.applications' names and, between the two styles, the
    full-size layout (test_models.test_full_size_oop_builds_the_procedural_layers)."""
    meta = default_metaparameters(preset, style)
    cut = shallow(meta)
    kwargs = small_kwargs(preset, n_classes)
    if cut != meta:
        kwargs["metaparameters"] = {**cut, **kwargs.get("metaparameters", {})}
    return kwargs


# --------------------------------------------------------------------------- small programs
#
# At shallow depth some presets build the very same program: resnet101 and resnet152 cut to
# two blocks a group are resnet50 cut to two blocks a group, the same code run on the same
# metaparameters at the same input. The checks that run a preset's small model through an
# architecture-wide path (one training step, the .keras round trip, backend parity) run
# once per program (small_programs()), in a test whose id names every preset it stands for
# (e.g. [resnet50+resnet101+resnet152-procedural]). Whether two presets are one program is
# decided from what is rendered, before anything is built (small_program_key), and shown
# at run time on the built networks: a twin's style-equivalence test, which still builds
# every preset's small model in both styles, holds its layers (names, types, configs, in
# order) to its representative's (test_models.test_small_styles_build_the_same_network).

# Spec fields that only name or describe the network: they reach the file as names,
# docstrings and the published-weights table, never as code the small build runs.
NAMING_FIELDS = ("name", "class_name", "title", "description", "citation", "reference")
# Assignments of data the small build never reads: the default metaparameters (replaced
# as a whole by shallow_kwargs) and the published weights' addresses (weights=None).
_DATA_NAMES = ("METAPARAMETERS", "metaparameters", "IMAGENET_WEIGHTS")


@cache
def code_shape(preset: str, style: str) -> tuple[str, dict]:
    """The golden file as code, and its default metaparameters (read from the file, not
    imported: nothing here imports keras). The code is its syntax tree without docstrings,
    with the values of the _DATA_NAMES assignments masked and the preset's name and class
    name masked wherever they appear (identifiers, strings): two presets with the same code
    shape run the same statements."""
    import ast

    spec = plan(preset).spec
    masks = {spec.name.lower(): "<name>", spec.class_name.lower(): "<ClassName>"}
    pattern = re.compile(
        "|".join(re.escape(name) for name in sorted(masks, key=len, reverse=True)), re.I
    )

    def masked(text: str) -> str:
        return pattern.sub(lambda match: masks[match[0].lower()], text)

    tree = ast.parse(golden_path(preset, style).read_text(encoding="utf-8"))
    defaults = None
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id in _DATA_NAMES for target in node.targets
        ):
            if node.targets[0].id.lower() == "metaparameters" and defaults is None:
                defaults = ast.literal_eval(node.value)
            node.value = ast.Constant(None)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = masked(node.value)
        for field in ("id", "name", "attr"):
            if isinstance(getattr(node, field, None), str):
                setattr(node, field, masked(getattr(node, field)))
    assert isinstance(defaults, dict), f"{golden_path(preset, style)}: no metaparameters"
    return ast.dump(tree), defaults


def small_program_key(preset: str) -> str:
    """What decides the program a preset's small model runs: its spec less NAMING_FIELDS
    and the learner's group list, the arguments each style's small model is built with
    (shallow_kwargs, with the metaparameters it runs on whether passed or the defaults:
    the depth cut) and both golden files' code shapes."""
    import json

    spec = plan(preset).spec.model_dump(mode="json")
    for field in NAMING_FIELDS:
        spec.pop(field, None)
    if isinstance(spec.get("learner"), dict):
        spec["learner"].pop("groups", None)  # in the metaparameters, cut
    key = [spec]
    for style in STYLES:
        code, defaults = code_shape(preset, style)
        kwargs = small_kwargs(preset)  # what shallow_kwargs builds with, read from the file
        kwargs["metaparameters"] = {**shallow(defaults), **kwargs.get("metaparameters", {})}
        key += [code, kwargs]
    return json.dumps(key, sort_keys=True, default=repr)


@cache
def small_programs() -> dict[str, tuple[str, ...]]:
    """{representative: (representative, its twins...)}: presets grouped by
    small_program_key, each group's shallowest preset (then the first by name) standing for
    it, in PRESETS order of the representatives."""
    groups: dict[str, list[str]] = {}
    for preset in PRESETS:
        groups.setdefault(small_program_key(preset), []).append(preset)
    programs = {}
    for members in groups.values():
        members.sort(key=lambda preset: (depth(preset), preset))
        programs[members[0]] = tuple(members)
    return {preset: programs[preset] for preset in PRESETS if preset in programs}


def representative(preset: str) -> str:
    """The preset whose small-program tests stand for this one's (itself if none)."""
    return next(rep for rep, members in small_programs().items() if preset in members)


# One style for both. The oop file's model is a functional keras.Model of the same layers
# as the procedural file's (its class builds self.model = keras.Model(inputs, outputs)).
# Where neither file defines code of its own that the model runs (a Layer subclass, a
# keras.ops call: the detectors, option A's ZeroChannels, the Siamese distance), the two
# styles' small models have one serialization: the same config, layer by layer and edge by
# edge (serialized(), which test_models.test_small_styles_build_the_same_network asserts
# for every such preset). A .keras file is that config and the weights; a training step
# and a call on another backend run that graph of Keras' own layers, built from shapes
# that do not depend on the backend. So the procedural run of those checks is the oop
# one's too, and runs once, under the id "procedural+oop"; files with code of their own
# run it in each style.


@cache
def runs_own_code(preset: str) -> bool:
    """Whether the preset's golden files define a class or call keras.ops: code of their
    own that the built model runs (the procedural file's, the oop file renders the same
    templates)."""
    import ast

    tree = ast.parse(golden_path(preset, "procedural").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            return True
        if isinstance(node, ast.Attribute) and node.attr == "ops":
            return True
    return False


def program_styles(preset: str) -> tuple[tuple[str, str], ...]:
    """(style built, label) of a small-program check: each style where the files run code
    of their own, else the procedural build for both (see above)."""
    if runs_own_code(preset):
        return tuple((style, style) for style in STYLES)
    return (("procedural", "+".join(STYLES)),)


def serialized(model) -> str:
    """The model's whole config as a .keras file holds it (every layer's class, config and
    inbound edges), with keras.Input's automatic name (input_layer_N, a per-session count)
    as input_layer."""
    import json

    import keras

    text = json.dumps(keras.saving.serialize_keras_object(model), sort_keys=True, default=str)
    return re.sub(r"\binput_layer(_\d+)?\b", "input_layer", text)


def small_program_params() -> list:
    """pytest parameters for a small-program test: (representative, style), with an id that
    names every preset of the program (representative first) and the style, or
    "procedural+oop" where one build stands for both (program_styles)."""
    return [
        pytest.param(rep, style, id=f"{'+'.join(members)}-{label}")
        for rep, members in small_programs().items()
        for style, label in program_styles(rep)
    ]


# --------------------------------------------------------------------------- shared builds
#
# One full-size build per preset and style per test run: the golden file run as a script
# (its `if __name__ == "__main__":` block builds the default model and prints its summary),
# here, in the test process, with the model the block built kept (run_as_script). Every
# full-size check of the preset uses that model (reference count, plan count, the printed
# summary, keras.applications' names and weights...). Likewise one small build per preset
# and style (small_model: shallow_kwargs, the size the architecture checks need), shared
# by the small-size checks (style equivalence, one training step, the .keras round trip).
#
# The tests that do are named test_full_size_* or test_small_* and take the preset as a
# parameter (its name is in the test id). Each preset's shared-model tests run next to each
# other, the procedural ones first, and, under xdist, on one worker as one unit
# (pytest_xdist_make_scheduler below), so each model is built once per run. Memory stays at
# one full-size model's worth plus the reference and the small models: another style's
# full-size model is dropped when the next is built, and everything when the group's last
# test ends. full_size() and small_model() refuse a call from any other test. Tests may
# load weights into a shared model or train it; they must not rely on its initial weights
# (the full-size models start at zeros where Keras would draw random values:
# cheap_initial_values), and must change nothing else (or restore it).


class FullSize(NamedTuple):
    model: object  # the keras.Model the file's __main__ block built
    summary: str  # what the block printed (model.summary())
    seconds: float  # how long the run took


_FULL: dict = {}  # (preset, style) -> FullSize; only the current preset's
_REFERENCE: dict = {}  # (preset, key) -> reference model of the current preset
_SMALL: dict = {}  # (preset, style) -> the current preset's small keras.Model
_LAYOUTS: dict = {}  # (preset, style) -> layer_layout() of the current preset's full size

_SHARED_TEST = re.compile(r"::test_(?:full_size|small)_\w*\[(?P<params>[^\]]*)\]")


def shared_group(nodeid: str) -> str | None:
    """The preset of a test_full_size_* or test_small_* test from its node id, else None."""
    match = _SHARED_TEST.search(nodeid)
    if match is None:
        return None
    # a small-program test's id names its presets as rep+twin+...: the first is the preset
    presets = [part.split("+")[0] for part in match["params"].split("-")]
    presets = [part for part in presets if part in PRESETS]
    assert len(presets) == 1, f"{nodeid}: a shared-model test takes exactly one preset parameter"
    return presets[0]


def _current_test_preset() -> str | None:
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    return shared_group(current.rsplit(" (", 1)[0]) if current else None


def _claim(preset: str) -> None:
    """Only the preset's own shared-model test may ask; another preset's models go."""
    current = _current_test_preset()
    assert current == preset, (
        f"a shared {preset} model requested by {os.environ.get('PYTEST_CURRENT_TEST')}: only "
        f"a test_full_size_* or test_small_* test with a `preset` parameter of {preset!r} "
        "may build it (conftest.full_size, conftest.small_model)"
    )
    if any(other[0] != preset for other in [*_FULL, *_REFERENCE, *_SMALL, *_LAYOUTS]):
        drop_shared()


def release_memory() -> None:
    """Collect garbage and hand freed heap back to the system (glibc's malloc_trim): the
    full-size models leave hundreds of MB behind otherwise. When no shared model is held,
    what survives the collection lives for the whole run (the frameworks' modules and
    caches, half a million objects with tensorflow, torch and jax loaded): gc.freeze() moves
    it out of the collector's sight, so that this collection and the automatic ones while a
    model is built stop walking it (0.34-0.37 s a full collection; 0.00004 s frozen)."""
    import ctypes
    import gc

    gc.collect()
    if not (_FULL or _REFERENCE or _SMALL):
        gc.freeze()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def drop_shared() -> None:
    """Forget every shared model (full-size, reference, small), and free their memory."""
    _LAYOUTS.clear()
    if _FULL or _REFERENCE or _SMALL:
        _FULL.clear()
        _REFERENCE.clear()
        _SMALL.clear()
        if "keras" in sys.modules:
            sys.modules["keras"].backend.clear_session(free_memory=False)
        release_memory()


def run_as_script(preset: str, style: str) -> FullSize:
    """Run golden/<style>/<preset>.py as `__main__` (what `python file.py` does) from an
    empty working folder, capture what it prints and the model its summary() was called on
    (its randomly initialised weights at zeros: cheap_initial_values)."""
    import tempfile

    import keras

    built = []
    summary = keras.Model.summary

    def capture(model, *args, **kwargs):
        built.append(model)
        return summary(model, *args, **kwargs)

    out = io.StringIO()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        here = os.getcwd()
        os.chdir(folder)
        stack.callback(os.chdir, here)
        # COLUMNS keeps the summary table from wrapping, as in a wide terminal.
        stack.enter_context(mock.patch.dict(os.environ, {"COLUMNS": "200"}))
        stack.enter_context(mock.patch.object(keras.Model, "summary", capture))
        stack.enter_context(contextlib.redirect_stdout(out))
        # No full-size check reads the model's initial values (counts, names, strides,
        # shapes, the summary; the weight checks set keras.applications' weights first).
        stack.enter_context(cheap_initial_values())
        runpy.run_path(str(golden_path(preset, style)), run_name="__main__")
    assert len(built) == 1, f"{preset} ({style}): __main__ called summary() {len(built)} times"
    return FullSize(built[0], out.getvalue(), time.perf_counter() - start)


def full_size(preset: str, style: str) -> FullSize:
    """The preset's full-size model in that style, built once per test run (see above)."""
    key = (preset, style)
    if key not in _FULL:
        _claim(preset)
        if _FULL:  # the other style's: its tests ran first (pytest_collection_modifyitems)
            for other, built in _FULL.items():  # what full_size_layout needs of it stays
                _LAYOUTS.setdefault(other, layer_layout(built.model))
            _FULL.clear()
            release_memory()
        _FULL[key] = run_as_script(preset, style)
    return _FULL[key]


def layer_layout(model) -> list[tuple]:
    """Every layer of the model, in order: (name, type, config without the name). The input
    layer's name is Keras' automatic one (input_layer, input_layer_1 ...), so it is None;
    types by class name (each file defines its own layer classes: the Siamese L1Distance)."""
    import keras

    return [
        (
            None if isinstance(layer, keras.layers.InputLayer) else layer.name,
            type(layer).__name__,
            {**layer.get_config(), "name": None},
        )
        for layer in model.layers
    ]


def full_size_layout(preset: str, style: str) -> list[tuple]:
    """layer_layout() of the preset's full-size model in that style: kept when full_size()
    drops the model for the other style's, so both styles' can be compared at full size
    with one full-size model in memory."""
    key = (preset, style)
    if key not in _LAYOUTS:
        _LAYOUTS[key] = layer_layout(full_size(preset, style).model)
    return _LAYOUTS[key]


def full_size_reference(preset: str, key, make):
    """A reference model for the preset (say keras.applications' twin), made once by
    make() and shared by both styles' full-size checks like full_size()."""
    if (preset, key) not in _REFERENCE:
        _claim(preset)
        _REFERENCE[(preset, key)] = make()
    return _REFERENCE[(preset, key)]


def small_model(preset: str, style: str):
    """The preset's small model in that style (shallow_kwargs: the small input, 10 classes,
    at most MAX_DEPTH blocks a group), built once per test run (see above)."""
    key = (preset, style)
    if key not in _SMALL:
        _claim(preset)
        _SMALL[key] = build(preset, style, **shallow_kwargs(preset, style))
    return _SMALL[key]


def _style_of(nodeid: str) -> str:
    params = nodeid.rpartition("[")[2].rstrip("]").split("-")
    return next((style for style in STYLES if style in params), "")


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """After a preset's last shared-model test, its models go (see full_size)."""
    preset = shared_group(item.nodeid)
    if preset is not None and (nextitem is None or shared_group(nextitem.nodeid) != preset):
        drop_shared()


def pytest_collection_modifyitems(config, items):
    """Put each preset's shared-model tests next to each other, at the first one's place; and
    the slow tests first (in their order), so that under -n the quick ones fill the end of
    the run rather than one long test keeping a worker busy while the others are idle."""
    groups: dict[str, list] = {}
    order: list = []
    for item in items:
        preset = shared_group(item.nodeid)
        if preset is None:
            order.append(item)
        elif preset in groups:
            groups[preset].append(item)
        else:
            groups[preset] = [item]
            order.append(preset)
    for members in groups.values():  # one style at a time: procedural, then oop
        members.sort(key=lambda item: STYLES.index(_style_of(item.nodeid) or STYLES[0]))
    units = [groups[entry] if entry in groups else [entry] for entry in order]
    # a preset's group counts as slow when one of its tests is, and stays together
    units.sort(key=lambda unit: not any(item.get_closest_marker("slow") for item in unit))
    items[:] = [item for unit in units for item in unit]


def pytest_xdist_make_scheduler(config, log):
    """Under `-n` (xdist's default `--dist load`): each preset's shared-model tests go to one
    worker as one unit, every other test on its own; larger units first. Another --dist
    keeps xdist's own scheduler."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedModelScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            preset = shared_group(nodeid)
            return f"shared:{preset}" if preset else nodeid

        def _reschedule(self, node) -> None:
            # A worker that replaces a crashed one gets work once it has collected (xdist's
            # LoadScopeScheduling would look its collection up before: KeyError).
            if node in self.registered_collections:
                super()._reschedule(node)

    return SharedModelScheduling(config, log)


# --------------------------------------------------------------------------- keras.applications


def keras_application(preset: str):
    """keras.applications' twin of the preset (spec.reference), full size, weights=None,
    made once and shared by both styles' full-size checks (full_size_reference)."""
    import keras

    name, kwargs = keras_builder(plan(preset).spec.reference)
    shape = tuple(plan(preset).spec.input_shape)  # MobileNetV3's default is (None, None, 3)
    return full_size_reference(
        preset,
        "keras.applications",
        lambda: getattr(keras.applications, name)(weights=None, input_shape=shape, **kwargs),
    )


# keras.applications' own builders that take a depth, by block type, with the widths and
# strides keras' ResNet50/101/152 (V2) and DenseNet121/169/201 share: (filters, stride1) per
# residual stack; DenseNet's growth rate 32 and compression 0.5 are built into its blocks.
KERAS_STACKS = {
    "bottleneck": [(64, 1), (128, 2), (256, 2), (512, 2)],
    "preact_bottleneck": [(64, 2), (128, 2), (256, 2), (512, 1)],
}


def has_reduced_keras_builder(preset: str) -> bool:
    return plan(preset).spec.learner.block in {"dense", *KERAS_STACKS}


def reduced_keras_reference(preset: str, **kwargs):
    """keras' own model of the preset's family with MAX_DEPTH blocks per group (keras'
    ResNet(stack_fn) with its residual stacks, or DenseNet(blocks)), weights=None. Its
    widths and strides are keras', not the preset's: a wrong stride or width in the preset
    shows."""
    from keras.src.applications import densenet, resnet

    block = plan(preset).spec.learner.block
    name = f"{preset}_reduced"
    if block == "dense":
        return densenet.DenseNet([MAX_DEPTH] * 4, weights=None, name=name, **kwargs)
    preact = block == "preact_bottleneck"
    stack = resnet.stack_residual_blocks_v2 if preact else resnet.stack_residual_blocks_v1

    def stack_fn(x):
        for index, (filters, stride) in enumerate(KERAS_STACKS[block], start=2):
            x = stack(x, filters, MAX_DEPTH, stride1=stride, name=f"conv{index}")
        return x

    return resnet.ResNet(stack_fn, preact, True, weights=None, name=name, **kwargs)


def logits(model, x):
    """The model's class scores before the softmax (its `predictions` layer made linear
    for the call, then restored: the full-size model is shared)."""
    import keras

    head = model.get_layer("predictions")
    activation = head.activation
    head.activation = keras.activations.linear
    try:
        return model(x, training=False)
    finally:
        head.activation = activation


def cli_errors(argv, capsys):
    """Run the CLI in-process: its exit code and the lines it wrote to stderr."""
    code = main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


def assert_one_spec_error(preset: str, sets, field: str, reason: str, capsys) -> None:
    """`modelgen generate preset --set ...` exits 2 with one line: the preset, the field
    path, then a reason that contains `reason`."""
    argv = ["generate", preset]
    for item in sets:
        argv += ["--set", item]
    code, lines = cli_errors(argv, capsys)
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {preset}: {field}: "), lines
    assert reason in lines[0], lines
