"""The emitted models, built from golden/: counts, weights, styles, training, heads, files.

Every test builds the checked-in golden files (what a user gets), in both styles.
"""

import ast
import copy
import os
import re
import subprocess
import sys

import black
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    PARAM_COUNTS_MD,
    PRESETS,
    STYLES,
    architecture,
    as_outputs,
    build,
    cheap_initial_values,
    code_shape,
    deep_siblings,
    default_metaparameters,
    full_size,
    full_size_layout,
    golden_module,
    golden_path,
    has_reduced_keras_builder,
    is_detector,
    keras_application,
    layer_layout,
    load_golden,
    logits,
    model_class,
    output_shapes,
    plan,
    reduced_depth_sets,
    reduced_keras_reference,
    reduced_kwargs,
    reduced_metaparameters,
    representative,
    run_as_script,
    runs_own_code,
    sample_inputs,
    serialized,
    shallow_kwargs,
    sibling_key,
    small_input,
    small_kwargs,
    small_model,
    small_program_params,
    small_programs,
)

from generator.pipeline import plan_for
from generator.pretrained import keras_builder

SMALL = (64, 64, 3)  # 64 / 32 = 2x2 final maps for every preset
SMALL_CLASSES = 10

# Presets that deliberately have no row in param_counts.md. A new preset must either get a
# reference row or be listed here, so it never goes unchecked by accident.
NO_REFERENCE: frozenset[str] = frozenset(
    {
        # The SqueezeNet paper's bypass variants have no public reference network to count;
        # tests/test_squeezenet.py holds them to squeezenet1_0's count (simple: identity
        # shortcuts, no parameters) plus the four 1x1 bypass convolutions (complex).
        "squeezenet1_0_simple_bypass",
        "squeezenet1_0_complex_bypass",
        # GoogLeNet has no exact public Keras count; tests/test_inception.py holds each
        # inception module to the paper's Table 1 instead.
        "inception_v1",
        # The slides' 32x32x3 example has no public reference network;
        # tests/test_autoencoder.py holds it to the layers the slides describe.
        "conv_autoencoder",
        # Small demonstrations of classifier heads and the pre-stem, with no published
        # network to count; tests/test_heads_pre_stem.py holds the plan's count to Keras'
        # and each head or pre-stem layer to its own arithmetic.
        "multitask_resnet",
        "multilabel_vgg",
        "augmented_resnet",
        # A Siamese demonstration with no published network to count;
        # tests/test_siamese.py holds it to ResNet18's reference count less its 1000-way
        # layer, plus the one similarity unit, and the plan to Keras.
        "resnet18_twin",
        # The detectors have no Keras or torchvision counterpart; tests/test_detectors.py
        # (and tests/test_faster_rcnn.py) holds them to VGG16's count plus their own heads,
        # and the plan to Keras.
        "rcnn",
        "fast_rcnn",
        # tests/test_faster_rcnn.py: VGG16's convolutions + the RPN + the head, both styles.
        "faster_rcnn",
        # The CIFAR-size networks' papers give rounded counts (0.27M ...): tests/test_cifar.py
        # counts each paper's structure layer by layer and holds the plan (so Keras) to it.
        *(f"resnet{depth}_cifar" for depth in (20, 32, 44, 56, 110)),
        "preact_resnet164_cifar",
        "wrn_28_10_cifar",
        "wrn_16_8_cifar",
        "wrn_40_4_cifar",
        "resnext29_8x64d_cifar",
        "resnext29_16x64d_cifar",
        "densenet_bc_100_12_cifar",
        "densenet_bc_250_24_cifar",
        "densenet_bc_190_40_cifar",
    }
)

# Presets whose layer names follow keras.applications (spec.reference names the model).
KERAS_REFERENCES = {
    name: plan(name).spec.reference.removeprefix("keras.applications.")
    for name in PRESETS
    if plan(name).spec.keras_reference
}
CLASSIFIERS = [name for name in PRESETS if architecture(name) == "classifier"]
# keras.applications' v2 layout: pre-activation bottlenecks that stride the last block.
V2_PRESETS = [
    name
    for name in CLASSIFIERS
    if plan(name).spec.learner.block == "preact_bottleneck"
    and plan(name).spec.learner.stride_block == "last"
]

every_preset_and_style = pytest.mark.parametrize(
    "preset, style", [(p, s) for p in PRESETS for s in STYLES]
)
both_styles = pytest.mark.parametrize("style", STYLES)


def n_trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def random_batch(shape, batch=2, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, *shape), dtype=np.float32)


def max_abs_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def copy_sampler_states(source, target) -> None:
    """Give target's random samplers (the detectors' region layers, each with its own
    SeedGenerator: its state is a variable, but not one of get_weights()) source's states,
    layer by layer name, so that both draw the same samples. Left alone, each model's seeds
    are random: Faster R-CNN's losses then average different sampled regions."""
    samplers = {
        layer.name: layer for layer in source._flatten_layers() if hasattr(layer, "seed_generator")
    }
    for layer in target._flatten_layers():
        if hasattr(layer, "seed_generator"):
            layer.seed_generator.state.assign(samplers.pop(layer.name).seed_generator.state)
    assert not samplers, f"samplers only in {source.name}: {sorted(samplers)}"


def weighted_layers(model) -> dict:
    return {layer.name: layer for layer in model.layers if layer.weights}


def comparable_config(layer) -> dict:
    """get_config() without the name; BN's axis as a non-negative index (3 == -1 on 4-D)."""
    config = dict(layer.get_config())
    config.pop("name", None)
    if isinstance(layer, keras.layers.BatchNormalization):
        rank = len(layer.input.shape)
        axis = config["axis"]
        axes = axis if isinstance(axis, list | tuple) else [axis]
        config["axis"] = [a % rank for a in axes]
    return config


# --------------------------------------------------------------------------- a. counts


def test_reference_table_parses(param_counts):
    # The rows this project depends on, with the compare column the table gives them.
    assert param_counts["resnet50"] == ("total", 25_636_712)
    assert param_counts["resnet18"] == ("trainable", 11_689_512)
    assert param_counts["inception_v3"] == ("total", 23_851_784)
    assert len(param_counts) >= 20, sorted(param_counts)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_has_a_reference_row(preset, param_counts):
    if preset in NO_REFERENCE:
        assert preset not in param_counts, f"{preset} is listed in NO_REFERENCE but has a row"
        return
    assert preset in param_counts, (
        f"preset {preset!r} has no row in {PARAM_COUNTS_MD}; add its reference count "
        "or list it in NO_REFERENCE"
    )


@pytest.mark.slow
@every_preset_and_style
def test_full_size_param_counts_match_reference(preset, style, param_counts):
    """The full-size model (the golden file's own __main__ build, shared by every full-size
    check of the preset: conftest.full_size) has the reference count where the table has
    a row, and the static plan's total and trainable counts for every preset."""
    model = full_size(preset, style).model  # full size, ImageNet head: the reference's setting
    total, trainable = model.count_params(), n_trainable(model)

    # The generator's static plan (what `modelgen list` prints) agrees with Keras.
    assert plan(preset).total_params == total, f"plan total {plan(preset).total_params:,}"
    assert plan(preset).trainable_params == trainable, (
        f"plan trainable {plan(preset).trainable_params:,} != keras {trainable:,}"
    )
    if preset in NO_REFERENCE:
        return  # no public count: its family file holds it to its own arithmetic
    assert preset in param_counts, f"{preset} has no row in {PARAM_COUNTS_MD}"
    compare, expected = param_counts[preset]
    got = total if compare == "total" else trainable
    assert got == expected, (
        f"{preset} ({style}): {compare} params {got:,} != reference {expected:,} "
        f"(off by {got - expected:+,})"
    )


# --------------------------------------------------------------------------- b. weights


def test_keras_referenced_presets():
    """The presets that promise keras.applications layer names (and are tested by b.),
    read from their specs: each reference names a keras.applications builder that takes
    the arguments it gives (MobileNet(alpha=0.75)), and builds the preset's network
    (pretrained.builds_reference: the header and the weights check say so)."""
    import inspect

    assert {"resnet50", "vgg16", "densenet121", "inception_v3", "mobilenet"} <= set(
        KERAS_REFERENCES
    )
    for preset, reference in KERAS_REFERENCES.items():
        name, kwargs = keras_builder(reference)
        builder = getattr(keras.applications, name, None)
        assert callable(builder), f"{preset}: keras.applications has no {name}"
        inspect.signature(builder).bind(weights=None, **kwargs)  # a TypeError: not its args
        assert plan(preset).builds_reference, f"{preset} does not build {reference}"


# Where names and weight shapes do not depend on the depth, a deep sibling's names and
# weights are compared at reduced depth against keras' own builder at that depth; the rest
# (every family's smallest member, and a deep sibling whose keras builder takes no depth:
# VGG19, whose Flatten ties fc1's kernel to the 224x224 input) at full size.
REDUCED_WEIGHTS = sorted(
    name for name in KERAS_REFERENCES if name in deep_siblings() and has_reduced_keras_builder(name)
)
FULL_SIZE_WEIGHTS = sorted(set(KERAS_REFERENCES) - set(REDUCED_WEIGHTS))


def test_every_keras_family_is_compared_at_full_size_on_its_smallest_member():
    for preset in KERAS_REFERENCES:
        siblings = [p for p in KERAS_REFERENCES if sibling_key(p) == sibling_key(preset)]
        smallest = min(siblings, key=lambda p: plan(p).total_params)
        assert smallest in FULL_SIZE_WEIGHTS, (preset, smallest)
    # Derived, not listed: the depth variants keras has a depth builder for go reduced
    # (resnet101/152, their v2s, densenet169/201); VGG19 has none; MobileNet's alphas are
    # all one depth (no deep sibling), so each is compared at full size.
    assert {"resnet101", "resnet152_v2", "densenet201"} <= set(REDUCED_WEIGHTS)
    assert {"vgg19", "mobilenet_0_75", "resnet50", "inception_v3"} <= set(FULL_SIZE_WEIGHTS)
    assert all(has_reduced_keras_builder(name) for name in REDUCED_WEIGHTS)


def assert_same_network_as(reference, ours, what: str) -> None:
    """Every weighted layer of the reference, by name, in ours (and no other): same type,
    weight shapes and config; then the reference's weights are copied in by name."""
    ref_layers, our_layers = weighted_layers(reference), weighted_layers(ours)
    missing = sorted(set(ref_layers) - set(our_layers))
    extra = sorted(set(our_layers) - set(ref_layers))
    assert not missing, f"{what} lacks weighted layers of the reference: {missing}"
    assert not extra, f"{what} has weighted layers the reference lacks: {extra}"
    for name, ref_layer in ref_layers.items():
        our_layer = our_layers[name]
        assert type(our_layer) is type(ref_layer), (
            f"{name}: {type(our_layer).__name__} != {type(ref_layer).__name__}"
        )
        ref_shapes = [tuple(w.shape) for w in ref_layer.weights]
        our_shapes = [tuple(w.shape) for w in our_layer.weights]
        assert our_shapes == ref_shapes, f"{name}: weight shapes {our_shapes} != {ref_shapes}"
        assert comparable_config(our_layer) == comparable_config(ref_layer), (
            f"{name}: config differs from the reference"
        )
        our_layer.set_weights(ref_layer.get_weights())


@pytest.mark.slow
@pytest.mark.parametrize("preset", FULL_SIZE_WEIGHTS)
@both_styles
def test_full_size_keras_applications_weights_load_by_name(preset, style):
    """At full size (the preset's input, ImageNet head): every weighted layer of
    keras.applications' model by name, and with its weights the same logits (< 1e-5)."""
    application = KERAS_REFERENCES[preset]
    reference = keras_application(preset)
    ours = full_size(preset, style).model
    assert_same_network_as(reference, ours, f"{preset} ({style})")

    shape = tuple(reference.input_shape[1:])
    assert shape == tuple(ours.input_shape[1:]) == plan(preset).spec.input_shape
    x = random_batch(shape, seed=1)
    expected, got = logits(reference, x), logits(ours, x)
    assert tuple(got.shape) == tuple(expected.shape) == (2, 1000)
    assert np.all(np.isfinite(expected)) and np.std(expected) > 0
    diff = max_abs_diff(got, expected)
    assert diff < 1e-5, f"{preset} ({style}) vs {application}: max abs diff {diff:.3g}"


@pytest.mark.slow
@pytest.mark.parametrize("preset", REDUCED_WEIGHTS)
@both_styles
def test_keras_applications_weights_load_by_name_at_reduced_depth(preset, style):
    """A deep sibling at reduced depth and a small input: the same layers by name as
    keras' own builder at that depth, and with its weights the same logits (< 1e-5). Its
    full-depth names follow: test_full_size_reduced_depth_keeps_every_layer_kind, the
    count, and the smallest sibling's full-size comparison (the same emitted code)."""
    meta = reduced_metaparameters(preset, style)
    shape = small_input(preset)
    kwargs = dict(input_shape=shape, classifier_activation=None)  # compare logits
    reference = reduced_keras_reference(preset, **kwargs)
    ours = build(preset, style, metaparameters=meta, **kwargs)
    assert_same_network_as(reference, ours, f"{preset} ({style}, reduced)")

    x = random_batch(shape, seed=1)
    expected, got = reference(x, training=False), ours(x, training=False)
    assert tuple(got.shape) == tuple(expected.shape) == (2, 1000)
    assert np.all(np.isfinite(expected)) and np.std(expected) > 0
    diff = max_abs_diff(got, expected)
    assert diff < 1e-5, f"{preset} ({style}) vs keras at reduced depth: max abs diff {diff:.3g}"


def layer_kinds(model) -> set[tuple[str, str]]:
    """(name with every number as N, type) of each layer but the input: what a layer is,
    whatever block it sits in."""
    return {
        (re.sub(r"\d+", "N", layer.name), type(layer).__name__)
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    }


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(deep_siblings()))
@both_styles
def test_full_size_reduced_depth_keeps_every_layer_kind(preset, style):
    """The reduced-depth build the architecture checks use has every kind of layer the
    full-size model has (every block kind, shortcut, transition and head: names with their
    numbers as N, and types), fewer layers, and, for each layer name both have, the same
    weight shapes (but where the width depends on the depth: a DenseNet after its first
    group, whose transitions see fewer concatenated maps, and VGG's Flatten-fed fc1 at the
    small input). A v2 group's last, strided block is block 2 when cut to two blocks."""
    full = full_size(preset, style).model
    reduced = build(preset, style, **reduced_kwargs(preset, style))
    assert layer_kinds(reduced) == layer_kinds(full)
    assert len(reduced.layers) < len(full.layers)
    full_layers = {layer.name: layer for layer in full.layers}
    dense = plan(preset).spec.learner.block == "dense"
    shared = [layer for layer in reduced.layers if layer.name in full_layers]
    assert len(shared) > len(reduced.layers) // 2, f"{preset} ({style}): the names changed"
    for layer in shared:
        if layer.name in ("fc1", "predictions"):  # fc1: Flatten-fed; the small head: 10
            continue
        if dense and not layer.name.startswith(("conv1", "conv2_")):
            continue
        shapes = [tuple(w.shape) for w in layer.weights]
        assert shapes == [tuple(w.shape) for w in full_layers[layer.name].weights], layer.name


@pytest.mark.slow
@pytest.mark.parametrize("preset, style", [(preset, "oop") for preset in PRESETS])
def test_full_size_oop_builds_the_procedural_layers(preset, style):
    """At full size both styles build the same layers, in order: names, types and configs
    of every block of every group (conftest.full_size_layout: the procedural model's
    layout is kept when the shared full-size model is rebuilt in the oop style). Their
    outputs with the same weights need both models at once: the small-size test below."""
    procedural = full_size_layout(preset, "procedural")
    oop = full_size_layout(preset, style)
    for index, (ours, theirs) in enumerate(zip(oop, procedural, strict=False)):  # lengths: below
        assert ours == theirs, f"{preset}: layer {index} differs: oop {ours}, procedural {theirs}"
    assert len(oop) == len(procedural), f"{preset}: {len(oop)} layers oop, {len(procedural)}"


def test_one_style_stands_for_both_only_where_the_files_run_no_code_of_their_own():
    """The small-program checks run both styles for the files that define a layer class or
    call keras.ops (the detectors, option A's ZeroChannels, the Siamese distance), the
    procedural build once for both elsewhere (conftest.program_styles)."""
    own = {preset for preset in PRESETS if runs_own_code(preset)}
    assert {"rcnn", "fast_rcnn", "faster_rcnn", "resnet20_cifar", "siamese_omniglot"} <= own
    assert not own & {"resnet50", "mobilenet_v2", "inception_v3", "densenet121", "vgg16"}
    ids = [param.id for param in small_program_params()]
    assert "faster_rcnn-procedural" in ids and "faster_rcnn-oop" in ids
    assert "resnet50+resnet101+resnet152-procedural+oop" in ids
    assert not any(id_.endswith("-oop") and "+oop" not in id_ for id_ in ids if "resnet50" in id_)


def test_small_programs_group_only_depth_variants():
    """conftest.small_programs: every preset in exactly one program; presets that differ
    only in depth (and names) share one, the shallowest standing for it; any other
    difference (a stride's place, a width, a block, the stem) keeps them apart. Nothing is
    built: the key is read from the plans and the golden files."""
    programs = small_programs()
    members = [preset for group in programs.values() for preset in group]
    assert sorted(members) == sorted(PRESETS)
    assert all(group[0] == rep for rep, group in programs.items())
    assert programs["resnet50"] == ("resnet50", "resnet101", "resnet152")
    assert representative("resnet110_cifar") == "resnet20_cifar"
    assert representative("resnet34") == "resnet18"  # its cut is resnet18's own depth
    assert representative("vgg19") == "vgg16"
    for preset in ("resnet50_v1_5", "resnet50_v2", "wide_resnet50_2", "se_resnet50"):
        assert representative(preset) == preset, f"{preset} is not resnet50's program"
    assert representative("resnext29_16x64d_cifar") == "resnext29_16x64d_cifar"  # width
    # The code shape masks names, docstrings and the data a small build never reads.
    code, defaults = code_shape("resnet101", "procedural")
    assert "resnet101" not in code.lower() and "_weights_tf_dim_ordering" not in code
    assert defaults == default_metaparameters("resnet101", "procedural")
    assert code == code_shape("resnet152", "procedural")[0]
    assert code != code_shape("resnet50_v1_5", "procedural")[0]


@pytest.mark.parametrize("preset", PRESETS)
def test_small_styles_build_the_same_network(preset):
    """Both styles build the same layers (names, types, configs, in order) and, with the
    same weights, the same outputs: at the small input and shallow depth (conftest.
    shallow_kwargs; each style cut from its own metaparameters, so that a difference in
    them shows; at full depth: test_full_size_oop_builds_the_procedural_layers). The
    preset's shared small models (conftest.small_model): the oop one gets the procedural
    one's weights. A preset whose small-program tests (training step, round trip, backend
    parity) are another's (conftest.small_programs) builds that one's network; where those
    tests run the procedural build for both styles (conftest.program_styles), the two
    models have one serialization: every layer's config and every edge the same."""
    shape = small_input(preset)
    procedural = small_model(preset, "procedural")
    oop = small_model(preset, "oop")

    assert layer_layout(oop) == layer_layout(procedural)
    assert oop.name == procedural.name
    if not runs_own_code(preset):  # its small-program checks run the procedural build only
        assert serialized(oop) == serialized(procedural), (
            f"{preset}: the oop model's config is not the procedural one's, yet the "
            "procedural run of its training step, round trip and backend parity stands for "
            "both (conftest.program_styles)"
        )
    twin_of = representative(preset)
    if twin_of != preset:  # its small-program tests are twin_of's: the same network?
        with cheap_initial_values():  # the layers only
            theirs = build(twin_of, "procedural", **shallow_kwargs(twin_of, "procedural"))
        assert layer_layout(procedural) == layer_layout(theirs), (
            f"{preset}: its small model is not {twin_of}'s, yet {twin_of}'s small-program "
            "tests stand for it (conftest.small_programs)"
        )
        del theirs
    assert oop.count_params() == procedural.count_params()
    assert n_trainable(oop) == n_trainable(procedural)

    oop.set_weights(procedural.get_weights())
    copy_sampler_states(procedural, oop)
    x = sample_inputs(preset, shape, seed=2)
    expected = as_outputs(procedural(x, training=False))
    got = as_outputs(oop(x, training=False))
    assert len(got) == len(expected) == len(procedural.outputs)
    shapes = output_shapes(preset, shape, n_classes=SMALL_CLASSES)
    for index, (ours, theirs, want) in enumerate(zip(got, expected, shapes, strict=True)):
        assert tuple(ours.shape) == want
        diff = max_abs_diff(ours, theirs)  # float32 round-off at most: 1e-6 of the scale
        bound = 1e-6 * max(1.0, float(np.max(np.abs(theirs))))
        assert diff < bound, f"{preset}: procedural vs oop output {index} max abs diff {diff:.3g}"


# --------------------------------------------------------------------------- d. strides


@both_styles
def test_v1_strides_the_1x1_and_v1_5_the_3x3(style):
    assert plan("resnet50").spec.learner.stride_on == "1x1"
    assert plan("resnet50_v1_5").spec.learner.stride_on == "3x3"
    v1 = build("resnet50", style, input_shape=SMALL)
    v1_5 = build("resnet50_v1_5", style, input_shape=SMALL)

    for group in (3, 4, 5):
        first, second = f"conv{group}_block1_1_conv", f"conv{group}_block1_2_conv"
        assert tuple(v1.get_layer(first).strides) == (2, 2), f"v1 {first}"
        assert tuple(v1.get_layer(second).strides) == (1, 1), f"v1 {second}"
        assert tuple(v1_5.get_layer(first).strides) == (1, 1), f"v1.5 {first}"
        assert tuple(v1_5.get_layer(second).strides) == (2, 2), f"v1.5 {second}"
        # The projection shortcut downsamples in both.
        for model in (v1, v1_5):
            assert tuple(model.get_layer(f"conv{group}_block1_0_conv").strides) == (2, 2)
    for model in (v1, v1_5):  # conv2 keeps H, W (the stem's max pool downsampled)
        for layer in ("conv2_block1_1_conv", "conv2_block1_2_conv", "conv2_block1_0_conv"):
            assert tuple(model.get_layer(layer).strides) == (1, 1), layer
    assert v1_5.output.shape == v1.output.shape


@pytest.mark.slow
@pytest.mark.parametrize("preset", V2_PRESETS)
@both_styles
def test_full_size_v2_strides_the_last_block(preset, style):
    """Every block of every group: the preset's shared full-size model (conftest.full_size)."""
    groups = default_metaparameters(preset, style)["groups"]
    assert len(groups) == 4
    model = full_size(preset, style).model
    for group, params in enumerate(groups, start=2):
        last = params["n_blocks"]
        assert last > 1, "the layout below assumes several blocks per group"
        expected = (1, 1) if group == 5 else (2, 2)
        layer = f"conv{group}_block{last}_2_conv"
        assert tuple(model.get_layer(layer).strides) == expected, layer
        for block in range(1, last):  # the earlier blocks keep H, W
            layer = f"conv{group}_block{block}_2_conv"
            assert tuple(model.get_layer(layer).strides) == (1, 1), layer
        assert tuple(model.get_layer(f"conv{group}_block1_0_conv").strides) == (1, 1)
        pool_names = {layer.name for layer in model.layers}
        shortcut_pool = f"conv{group}_block{last}_0_pool"
        assert (shortcut_pool in pool_names) == (group != 5), shortcut_pool


# --------------------------------------------------------------------------- e. training


@pytest.mark.slow
@pytest.mark.parametrize("preset, style", small_program_params())
def test_small_one_training_step(preset, style):
    """On tensorflow, one SGD step in training mode (batch statistics, dropout on): a finite
    loss, a gradient for every trainable variable, most weights changed, a finite loss
    after: at the small input and shallow depth (conftest.shallow_kwargs: every block kind
    is there; what depth adds is more of the same blocks). The preset's shared small model
    (conftest.small_model): any weights serve. Once per small program (conftest.
    small_programs: the test id names every preset whose small model it is), in each style
    or, where both styles' models have one serialization, once for both ("procedural+oop":
    conftest.program_styles). That every variable influences the loss (a finite, non-zero
    gradient in inference mode) is checked for the same programs and styles by the torch
    child of test_backends (harness.
    check_gradients, as `modelgen verify` checks it): the check is the architecture's, and
    a TensorFlow backward pass costs 3 s more per ResNeXt model (each grouped convolution
    compiles with XLA per call)."""
    shape = small_input(preset)
    model = small_model(preset, style)
    x = sample_inputs(preset, shape, seed=3)
    x = [tf.constant(part) for part in x] if isinstance(x, list) else tf.constant(x)
    variables = model.trainable_variables
    assert variables
    kind = architecture(preset)
    if kind == "classifier":
        y = tf.constant([1, 7])
        loss_of = keras.losses.sparse_categorical_crossentropy
    elif kind == "siamese":  # one pair of the same class, one of different classes
        y = tf.constant([[1.0], [0.0]])
        loss_of = keras.losses.binary_crossentropy
    elif is_detector(preset):  # no labels: loss_fn pulls every output towards 0.5
        y = None
    else:  # the autoencoder reproduces its input
        y = x
        loss_of = keras.losses.mean_squared_error
    aux = plan(preset).spec.classifier.aux if kind == "classifier" else None
    aux_weight = aux.loss_weight if aux else 0.0  # auxiliary outputs: their losses down-weighted

    heads = plan(preset).heads if kind == "classifier" else []

    def head_loss(head, out):
        """Integer labels for a softmax head, 0/1 vectors for a sigmoid (multi-label) one."""
        if head.activation == "softmax":
            return keras.losses.sparse_categorical_crossentropy(
                tf.constant([1, head.n_classes - 1]), out
            )
        return keras.losses.binary_crossentropy(np.eye(2, head.n_classes, dtype="float32"), out)

    def loss_fn(labels, result):
        if heads:  # classifier.heads: a loss and a weight per named output
            outputs = as_outputs(result)
            return sum(
                head.loss_weight * tf.reduce_mean(head_loss(head, out))
                for head, out in zip(heads, outputs, strict=True)
            )
        if is_detector(preset):  # per-region scores and box deltas, pulled towards 0.5
            return sum(tf.reduce_mean(tf.square(out - 0.5)) for out in as_outputs(result))
        losses = [loss_of(labels, out) for out in as_outputs(result)]
        return sum(
            w * tf.reduce_mean(loss)
            for w, loss in zip([1.0] + [aux_weight] * (len(losses) - 1), losses, strict=True)
        )

    # One real training step, eagerly (at the small input an eager step costs a fraction of
    # tracing the model into a graph: resnet50 1.1 s against 5.7 s, densenet121 1.4 s
    # against 16 s): batch statistics, dropout on, SGD update.
    optimizer = keras.optimizers.SGD(learning_rate=0.01)
    before = [v.numpy().copy() for v in variables]
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, variables)
    assert np.isfinite(float(loss)), f"{preset} ({style}): training loss {float(loss)}"
    missing = [v.path for v, g in zip(variables, grads, strict=True) if g is None]
    assert not missing, f"{preset} ({style}): no gradient in training mode for {missing}"
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)
    optimizer.apply_gradients(zip(grads, variables, strict=True))
    changed = [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables, strict=True)]
    assert sum(changed) > len(changed) // 2, "the SGD step left most weights unchanged"
    after = loss_fn(y, model(x, training=True))
    assert np.isfinite(float(after))


# --------------------------------------------------------------------------- f. heads


# The head switches themselves, every family in both styles: tests/test_heads.py.
HEAD_PRESETS = ["resnet18", "vgg16", "resnet50_v2"]


@pytest.mark.parametrize("preset", HEAD_PRESETS)
@both_styles
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(pooling="bogus"), "pooling"),
        (dict(include_top=True, pooling="avg"), "pooling"),
        (dict(n_classes=0), "n_classes"),
        (dict(n_classes=2.5), "n_classes"),
        (dict(metaparameters={"nope": 1}), "nope"),
    ],
    ids=["bogus-pooling", "top-with-pooling", "zero-classes", "float-classes", "unknown-key"],
)
def test_bad_arguments_raise(preset, style, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(preset, style, input_shape=SMALL, **kwargs)


def test_unknown_metaparameter_as_keyword_or_dict():
    module = golden_module("resnet18", "oop")
    with pytest.raises(ValueError, match="nope"):
        module.ResNet18(input_shape=SMALL, nope=1)
    module = golden_module("resnet18", "procedural")
    with pytest.raises(ValueError, match="nope"):
        module.build_model(input_shape=SMALL, metaparameters={"nope": 1})


@pytest.mark.parametrize("preset", ["vgg16", "vgg19"])
@both_styles
def test_vgg_top_needs_a_fixed_input(preset, style):
    with pytest.raises(ValueError, match="input_shape"):
        build(preset, style, input_shape=(None, None, 3))
    # Without the top, any size works (a fully convolutional feature extractor).
    features = build(preset, style, input_shape=(None, None, 3), include_top=False)
    assert tuple(features.output.shape) == (None, None, None, 512)


# --------------------------------------------------------------------------- g. OOP


def test_oop_blocks_tear_off():
    resnet50 = golden_module("resnet50", "oop").ResNet50
    out = resnet50.identity_block(keras.Input((56, 56, 256)), 64, name="probe")
    assert tuple(out.shape) == (None, 56, 56, 256)
    out = resnet50.projection_block(keras.Input((56, 56, 64)), 64, 1, name="p")
    assert tuple(out.shape) == (None, 56, 56, 256)
    out = resnet50.projection_block(keras.Input((56, 56, 256)), 128, 2, name="q")
    assert tuple(out.shape) == (None, 28, 28, 512)
    out = resnet50.group(keras.Input((56, 56, 64)), 64, 3, 1, name="g")
    assert tuple(out.shape) == (None, 56, 56, 256)

    resnet18 = golden_module("resnet18", "oop").ResNet18
    out = resnet18.identity_block(keras.Input((8, 8, 64)), 64, name="b")
    assert tuple(out.shape) == (None, 8, 8, 64)
    out = resnet18.projection_block(keras.Input((8, 8, 64)), 128, 2, name="c")
    assert tuple(out.shape) == (None, 4, 4, 128)

    resnet50_v2 = golden_module("resnet50_v2", "oop").ResNet50V2
    out = resnet50_v2.projection_block(keras.Input((16, 16, 64)), 64, 1, name="v")
    assert tuple(out.shape) == (None, 16, 16, 256)
    out = resnet50_v2.identity_block(keras.Input((16, 16, 256)), 64, 1, name="w")
    assert tuple(out.shape) == (None, 16, 16, 256)
    out = resnet50_v2.identity_block(keras.Input((16, 16, 256)), 64, 2, name="s")
    assert tuple(out.shape) == (None, 8, 8, 256)

    vgg16 = golden_module("vgg16", "oop").VGG16
    out = vgg16.group(keras.Input((32, 32, 3)), 64, 2, name="block1")
    assert tuple(out.shape) == (None, 16, 16, 64)


def test_torn_off_block_is_the_block_in_the_model():
    """A torn-off identity block has exactly the parameters of that block in the network."""
    resnet50 = golden_module("resnet50", "oop").ResNet50
    inputs = keras.Input((16, 16, 256))
    block = keras.Model(inputs, resnet50.identity_block(inputs, 64, name="conv2_block2"))
    full = resnet50(input_shape=SMALL).model
    in_model = sum(
        layer.count_params() for layer in full.layers if layer.name.startswith("conv2_block2_")
    )
    assert block.count_params() == in_model == 71_552


@pytest.mark.parametrize("preset", ["resnet50", "resnet50_v2"])
def test_oop_override_is_per_instance(preset):
    module = load_golden(preset, "oop")
    cls = model_class(module, preset)
    snapshot = copy.deepcopy(cls.metaparameters)
    override = [{"n_filters": 16, "n_blocks": 1, "strides": 1}]
    override_snapshot = copy.deepcopy(override)

    small = cls(input_shape=SMALL, groups=override).model
    default = cls(input_shape=SMALL).model

    assert cls.metaparameters == snapshot, "the class defaults were mutated"
    assert override == override_snapshot, "the caller's override was mutated"
    assert small.count_params() < default.count_params()
    assert "conv3_block1_1_conv" not in {layer.name for layer in small.layers}
    assert default.count_params() == cls(input_shape=SMALL).model.count_params()


def test_cheap_initial_values_start_at_zeros_inside_only():
    """conftest.cheap_initial_values, which the count-only builds here use: a random
    initializer gives zeros inside, random values again after (a constant one is kept)."""
    with cheap_initial_values():
        inside = keras.layers.Conv2D(4, 3, bias_initializer="ones")
        inside.build((None, 8, 8, 2))
    after = keras.layers.Conv2D(4, 3)
    after.build((None, 8, 8, 2))
    assert not np.any(keras.ops.convert_to_numpy(inside.kernel))
    assert np.all(keras.ops.convert_to_numpy(inside.bias) == 1)
    assert np.all(keras.ops.convert_to_numpy(after.kernel) != 0)


@every_preset_and_style
def test_metaparameter_override_does_not_mutate(preset, style):
    """An override builds a smaller model and changes neither the module's defaults, nor
    the caller's dict, nor the next default build (its count: the static plan's at that
    input, Keras' for a detector). A deep sibling's "default" here is its reduced depth
    (conftest.reduced_metaparameters; the override cuts that): the override machinery is
    its template's, built at full depth for the family's shallowest member, and the
    mutation checks on the module and the dict read the full defaults either way."""
    module = load_golden(preset, style)
    if style == "procedural":
        original = module.METAPARAMETERS
    else:
        original = model_class(module, preset).metaparameters
    snapshot = copy.deepcopy(original)
    reduced = reduced_metaparameters(preset, style)  # None but for a deep sibling
    base = reduced or original
    kind = architecture(preset)
    if is_detector(preset):  # as many groups (the feature stride stays), narrower
        override = {"groups": [{**group, "n_filters": 4} for group in original["groups"]]}
    elif kind == "siamese" and "embedding_units" in original:
        # fewer groups would leave bigger maps for the flattening twin
        override = {"embedding_units": original["embedding_units"] // 2}
    elif kind == "autoencoder":
        override = {"filters": copy.deepcopy(original["filters"][:1])}
    else:
        override = {"groups": copy.deepcopy(base["groups"][:1])}
    override_snapshot = copy.deepcopy(override)
    kwargs = dict(input_shape=small_input(preset))
    if kind == "classifier":
        kwargs.update(include_top=False, pooling="avg")
    overridden = dict(kwargs, metaparameters=override)
    if reduced:
        kwargs["metaparameters"] = reduced
    if is_detector(preset):  # few regions and a small region head, under the override
        kwargs, overridden = small_kwargs(preset), small_kwargs(preset, metaparameters=override)

    with cheap_initial_values():  # counts only: the initial values are never read
        if is_detector(preset):
            before = build(preset, style, module=module, **kwargs).count_params()
        else:  # the static plan's count at that input (without the top: no classifier stage)
            sets = [f"input_shape={list(kwargs['input_shape'])}", *reduced_depth_sets(preset)]
            sized = plan_for(preset, sets)
            before = sum(stage.params for stage in sized.stages if stage.kind != "classifier")
        small = build(preset, style, module=module, **overridden)
        after = build(preset, style, module=module, **kwargs).count_params()

    assert original == snapshot, f"{preset} ({style}): the module's defaults were mutated"
    assert override == override_snapshot, "the caller's override dict was mutated"
    assert small.count_params() < before, f"the override {override} had no effect"
    assert after == before, "an override leaked into the next default build (or the plan's "
    "count at this size is not Keras')"


# --------------------------------------------------------------------------- h. files


@every_preset_and_style
def test_golden_file_is_black_formatted(preset, style):
    source = golden_path(preset, style).read_text(encoding="utf-8")
    assert black.format_str(source, mode=black.Mode()) == source, "`black --check` would fail"


@every_preset_and_style
def test_golden_file_imports_only_keras(preset, style):
    tree = ast.parse(golden_path(preset, style).read_text(encoding="utf-8"))

    def is_keras(module):
        return module == "keras" or (module or "").startswith("keras.")

    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in a standalone file"
            imported.append(node.module)
    assert "keras" in imported
    assert all(is_keras(module) for module in imported), imported


@pytest.mark.slow
@every_preset_and_style
def test_full_size_golden_file_runs_as_a_script(preset, style):
    """The file's `if __name__ == "__main__":` block, run as `python file.py` runs it
    (runpy, from an empty folder: conftest.run_as_script), builds the full-size model and
    prints its summary with the plan's counts. The build is the one every full-size check
    of the preset shares."""
    summary = full_size(preset, style).summary
    total = plan(preset).total_params
    trainable = plan(preset).trainable_params
    assert f"Total params: {total:,}" in summary, summary[-2000:]
    assert f"Trainable params: {trainable:,}" in summary, summary[-2000:]


# The file a fresh interpreter runs: the smallest one (every file's __main__ block runs in
# test_full_size_golden_file_runs_as_a_script; this holds the in-process run to a real one).
STANDALONE = min(PRESETS, key=lambda name: plan(name).total_params)


@pytest.mark.slow
@both_styles
def test_golden_file_runs_standalone(style, tmp_path):
    """`python golden/<style>/<smallest preset>.py` in a fresh interpreter, away from the
    repo, prints what the in-process run printed."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["COLUMNS"] = "200"  # keep the summary table from wrapping
    result = subprocess.run(
        [sys.executable, str(golden_path(STANDALONE, style))],
        cwd=tmp_path,  # away from the repo: the file must not need the generator
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    total = plan(STANDALONE).total_params
    trainable = plan(STANDALONE).trainable_params
    assert f"Total params: {total:,}" in result.stdout, result.stdout[-2000:]
    assert f"Trainable params: {trainable:,}" in result.stdout, result.stdout[-2000:]
    in_process = run_as_script(STANDALONE, style).summary
    totals = [line.strip() for line in in_process.splitlines() if " params: " in line]
    assert totals and all(line in result.stdout for line in totals), totals


@both_styles
def test_the_name_argument_names_the_model(style):
    """name=, as keras.applications takes it; the preset's name by default."""
    assert build("resnet18", style, input_shape=SMALL).name == "resnet18"
    assert build("resnet18", style, input_shape=SMALL, name="my_backbone").name == "my_backbone"
    squeezenet = build("squeezenet1_1", style, input_shape=SMALL, include_top=False, name="s")
    assert squeezenet.name == "s"
