"""Multi-output classifiers (classifier.heads) and the pre-stem (pre_stem).

Heads: one named output per head, a dict keyed by head name; the plan counts them as Keras
does; training with one loss per head lowers the combined loss. Pre-stem: preprocessing and
augmentation layers in front of the stem, on any preset; augmentation acts only in training,
and include_pre_stem=False builds the network without it.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from conftest import (
    PRESETS,
    STYLES,
    architecture,
    build,
    full_size,
    golden_module,
    model_class,
    plan,
    small_input,
)

from generator.cli import main
from generator.pipeline import generate, plan_for

HEAD_PRESETS = ["multitask_resnet", "multilabel_vgg"]
PRE_STEM_PRESET = "augmented_resnet"
both_styles = pytest.mark.parametrize("style", STYLES)

NORMALIZE = (
    "pre_stem={resizing: true, rescaling: {scale: 0.00392156862745098}, "
    "normalization: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}}"
)


def images(shape, batch=4, seed=0):
    """Raw pixels in [0, 255]."""
    return np.random.default_rng(seed).uniform(0, 255, (batch, *shape)).astype("float32")


def emitted(target: str, style: str, overrides=()):
    """Generate a file (not a golden one) and import it as a namespace."""
    namespace: dict = {"__name__": f"emitted_{target}_{style}"}
    exec(compile(generate(target, style, list(overrides)), f"{target}.py", "exec"), namespace)
    return namespace


def build_from(namespace: dict, style: str, class_name: str, **kwargs):
    if style == "procedural":
        return namespace["build_model"](**kwargs)
    return namespace[class_name](**kwargs).model


# --------------------------------------------------------------------------- heads


@pytest.mark.parametrize("preset", [*HEAD_PRESETS, PRE_STEM_PRESET])
@both_styles
def test_plan_counts_what_keras_builds(preset, style):
    """At the preset's own size, heads and pre-stem included (the pre-stem has none)."""
    model = build(preset, style)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (plan(preset).total_params, plan(preset).trainable_params) == (
        model.count_params(),
        trainable,
    )


@pytest.mark.parametrize("preset", HEAD_PRESETS)
def test_each_head_adds_one_dense_layer_on_the_shared_features(preset):
    """The heads' share of the count: (features + 1) * n_classes each, nothing else."""
    features = build(preset, "procedural", include_top=False, pooling="avg")
    full = build(preset, "procedural")
    if plan(preset).spec.classifier.kind == "flatten":
        width = plan(preset).spec.classifier.dense_units[-1]
    else:
        width = features.output.shape[-1]
    heads = sum((width + 1) * head.n_classes for head in plan(preset).heads)
    dense = sum(layer.count_params() for layer in full.layers if layer.name.startswith("fc"))
    assert full.count_params() == features.count_params() + dense + heads


@pytest.mark.parametrize("preset", HEAD_PRESETS)
@both_styles
def test_heads_are_named_outputs_with_their_shape_and_activation(preset, style):
    model = build(preset, style)
    heads = plan(preset).heads
    assert model.output_names == sorted(head.name for head in heads)
    result = model(images(plan(preset).spec.input_shape) / 255, training=False)
    assert isinstance(result, dict) and list(result) == [head.name for head in heads]
    for head in heads:
        layer = model.get_layer(head.name)
        assert isinstance(layer, keras.layers.Dense) and layer.units == head.n_classes
        assert layer.get_config()["activation"] == head.activation
        out = keras.ops.convert_to_numpy(result[head.name])
        assert out.shape == (4, head.n_classes)
        if head.activation == "softmax":
            np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)
        else:  # independent probabilities, one per label
            assert np.all((out > 0) & (out < 1))
            assert not np.allclose(out.sum(axis=-1), 1.0)
    assert "predictions" not in {layer.name for layer in model.layers}


@both_styles
def test_heads_are_metaparameters(style):
    """A different set of heads without regenerating; bad ones are refused."""
    heads = [
        {"name": "shape", "n_classes": 3, "activation": "softmax"},
        {"name": "attributes", "n_classes": 4, "activation": "sigmoid"},
    ]
    model = build("multitask_resnet", style, metaparameters={"heads": heads})
    assert model.output_names == ["attributes", "shape"]
    assert model.get_layer("attributes").get_config()["activation"] == "sigmoid"
    assert model.output["shape"].shape[-1] == 3
    for bad in ([], [heads[0], heads[0]]):
        with pytest.raises(ValueError, match="heads need"):
            build("multitask_resnet", style, metaparameters={"heads": bad})
    with pytest.raises((TypeError, ValueError), match="n_classes"):  # each head has its own
        build("multitask_resnet", style, n_classes=10)


@pytest.mark.parametrize("preset", HEAD_PRESETS)
def test_include_top_false_drops_every_head(preset):
    features = build(preset, "oop", include_top=False, pooling="max")
    names = {layer.name for layer in features.layers}
    assert not names & {head.name for head in plan(preset).heads}
    assert len(features.outputs) == 1 and len(features.output.shape) == 2


def synthetic_task(shape, n=32, seed=0):
    """Images whose labels are learnable: category from the brightest quadrant, colour
    from the dominant channel, tags from which quadrants are bright."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.2, (n, *shape)).astype("float32")
    h, w = shape[0] // 2, shape[1] // 2
    bright = rng.random((n, 4)) < 0.5
    category = rng.integers(0, 4, n)
    bright[np.arange(n), category] = True
    colour = rng.integers(0, shape[2], n)
    for i in range(n):
        for q in range(4):
            if bright[i, q]:
                r, c = divmod(q, 2)
                x[i, r * h : (r + 1) * h, c * w : (c + 1) * w, colour[i]] += 0.8 + 0.2 * (
                    q == category[i]
                )
    return x, category, colour, bright.astype("float32")


@pytest.mark.slow
@pytest.mark.parametrize("preset", HEAD_PRESETS)
def test_training_with_one_loss_per_head_reduces_the_combined_loss(preset):
    """The compile call of the emitted docstring: a loss and a weight per head."""
    keras.utils.set_random_seed(0)
    model = build(preset, "procedural")
    heads = plan(preset).heads
    x, category, colour, bright = synthetic_task(plan(preset).spec.input_shape)
    labels = {}
    for head in heads:
        if head.activation == "sigmoid":  # multi-label: 0/1 vectors, padded to the width
            labels[head.name] = np.pad(bright, ((0, 0), (0, head.n_classes - 4)))
        else:
            labels[head.name] = category if head.name == "category" else colour
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss={head.name: head.loss for head in heads},
        loss_weights={head.name: head.loss_weight for head in heads},
    )
    before = model.evaluate(x, labels, verbose=0, return_dict=True)
    history = model.fit(x, labels, batch_size=16, epochs=8, verbose=0)
    after = model.evaluate(x, labels, verbose=0, return_dict=True)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0], losses
    assert after["loss"] < before["loss"], (before, after)
    if len(heads) > 1:  # the combined loss is the weighted sum of the heads' losses
        weighted = sum(head.loss_weight * after[f"{head.name}_loss"] for head in heads)
        assert after["loss"] == pytest.approx(weighted, rel=1e-3)


# --------------------------------------------------------------------------- pre-stem


@both_styles
def test_pre_stem_is_deterministic_at_inference_and_augments_in_training(style):
    model = build(PRE_STEM_PRESET, style)
    network = build(PRE_STEM_PRESET, style, include_pre_stem=False)
    assert not [layer for layer in network.layers if layer.name.startswith("pre_stem")]
    network.set_weights(model.get_weights())  # the pre-stem holds no weights
    x = images((64, 64, 3), seed=1)

    first = keras.ops.convert_to_numpy(model(x, training=False))
    second = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(model.predict_on_batch(x), first, atol=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0), first, atol=1e-6)
    # At inference the random layers pass the image through; only the rescaling acts.
    scale = plan(PRE_STEM_PRESET).spec.pre_stem.rescaling.scale
    alone = keras.ops.convert_to_numpy(network(x * scale, training=False))
    np.testing.assert_allclose(first, alone, atol=1e-5)

    pre_stem = keras.Model(model.input, model.get_layer("pre_stem_rescaling").output)
    keras.utils.set_random_seed(3)
    augmented = keras.ops.convert_to_numpy(pre_stem(x, training=True))
    assert not np.allclose(augmented, x * scale, atol=1e-3), "training did not augment"
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(pre_stem(x, training=False)), x * scale, rtol=1e-6
    )


@both_styles
def test_pre_stem_attaches_for_training_and_detaches_for_serving(style):
    """The emitted docstring's recipe: the trainer updates the very network served."""
    module = golden_module(PRE_STEM_PRESET, style)
    if style == "procedural":
        network, attach = module.build_model(include_pre_stem=False), module.pre_stem
    else:
        built = model_class(module, PRE_STEM_PRESET)(include_pre_stem=False)
        network, attach = built.model, built.pre_stem
    raw = keras.Input(shape=(None, None, 3))  # any size: the pre-stem resizes
    trainer = keras.Model(raw, network(attach(raw, 64, 64)))
    assert trainer.count_params() == network.count_params()
    trainer.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in network.get_weights()]
    trainer.fit(images((80, 72, 3), batch=4), np.array([0, 1, 2, 3]), epochs=1, verbose=0)
    assert any(not np.array_equal(b, a) for b, a in zip(before, network.get_weights(), strict=True))
    assert network.input.shape[1:] == (64, 64, 3)


@pytest.mark.slow
@both_styles
def test_pre_stem_on_any_preset_resizes_rescales_and_normalises(style):
    """resnet50 + a pre-stem: the same parameters, any image size in, and at inference
    exactly (x / 255 - mean) / std resized, fed to the network without its pre-stem."""
    namespace = emitted("resnet50", style, ["input_shape=[64, 64, 3]", NORMALIZE])
    model = build_from(namespace, style, "ResNet50", n_classes=5)
    network = build_from(namespace, style, "ResNet50", n_classes=5, include_pre_stem=False)
    assert (
        model.count_params()
        == network.count_params()
        == plan_for("resnet50", ["input_shape=[64, 64, 3]", "n_classes=5"]).total_params
    )
    assert tuple(model.input.shape) == (None, None, None, 3)
    network.set_weights(model.get_weights())

    x = images((64, 64, 3), batch=2, seed=2)
    mean = np.array([0.485, 0.456, 0.406], "float32")
    std = np.array([0.229, 0.224, 0.225], "float32")
    expected = network((x / 255 - mean) / std, training=False)
    np.testing.assert_allclose(model(x, training=False), expected, atol=1e-4)
    bigger = images((97, 80, 3), batch=2, seed=3)  # resized to 64x64 by the pre-stem
    assert tuple(model(bigger, training=False).shape) == (2, 5)


@both_styles
def test_pre_stem_crop_takes_larger_images_and_is_deterministic(style):
    pre_stem = "pre_stem={crop: true, flip: horizontal_and_vertical, zoom: 0.2}"
    namespace = emitted("multilabel_vgg", style, [pre_stem])
    model = build_from(namespace, style, "MultilabelVGG")
    assert [layer.name for layer in model.layers[1:5]] == [
        "pre_stem_crop",
        "pre_stem_center_crop",
        "pre_stem_flip",
        "pre_stem_zoom",
    ]
    x = images((40, 48, 3), batch=2) / 255
    once = keras.ops.convert_to_numpy(model(x, training=False)["tags"])
    np.testing.assert_allclose(once, model.predict_on_batch(x)["tags"], atol=1e-6)
    assert once.shape == (2, 20)
    # At inference: the network on the central 32x32 window.
    network = build_from(namespace, style, "MultilabelVGG", include_pre_stem=False)
    network.set_weights(model.get_weights())
    central = keras.ops.convert_to_numpy(network(x[:, 4:36, 8:40])["tags"])
    np.testing.assert_allclose(once, central, atol=1e-6)
    # In training: random windows of the larger images, any size in.
    model.compile(optimizer="sgd", loss={"tags": "binary_crossentropy"})
    model.fit(x, {"tags": np.ones((2, 20), "float32")}, epochs=1, verbose=0)


def test_presets_without_a_pre_stem_are_untouched():
    """No pre-stem layer, no include_pre_stem switch, no `heads` where none was asked."""
    for preset in ("resnet50", "vgg16", "inception_v3"):
        text = generate(preset, "procedural")
        assert "pre_stem" not in text and "heads" not in text


# --------------------------------------------------------------------------- spec errors


BAD = {
    "empty-heads": (
        ["n_classes=null", "classifier.heads=[]"],
        "classifier.heads: must list at least one head",
    ),
    "duplicate-heads": (
        ["n_classes=null", "classifier.heads=[{name: a, n_classes: 2}, {name: a, n_classes: 3}]"],
        "classifier.heads: the head name 'a' is used more than once",
    ),
    "head-not-identifier": (
        ["n_classes=null", "classifier.heads=[{name: 2nd, n_classes: 2}]"],
        "classifier.heads[0].name: must be a Python identifier",
    ),
    "head-keyword": (
        ["n_classes=null", "classifier.heads=[{name: class, n_classes: 2}]"],
        "classifier.heads[0].name: must be a Python identifier",
    ),
    "head-takes-layer-name": (
        ["n_classes=null", "classifier.heads=[{name: avg_pool, n_classes: 2}]"],
        "classifier.heads[0].name: 'avg_pool' is the name of one of the classifier's own",
    ),
    "head-zero-classes": (
        ["n_classes=null", "classifier.heads=[{name: a, n_classes: 0}]"],
        "classifier.heads[0].n_classes: must be >= 1, got 0",
    ),
    "head-activation": (
        ["n_classes=null", "classifier.heads=[{name: a, n_classes: 2, activation: relu}]"],
        "classifier.heads[0].activation: must be one of 'softmax' or 'sigmoid'",
    ),
    "head-without-classes": (
        ["n_classes=null", "classifier.heads=[{name: a}]"],
        "classifier.heads[0].n_classes: required field is missing",
    ),
    "heads-and-n_classes": (
        ["classifier.heads=[{name: a, n_classes: 2}]"],
        "n_classes: does not apply with classifier.heads",
    ),
    "rotation-range": (["pre_stem={rotation: 0.7}"], "pre_stem.rotation: must be <= 0.5"),
    "zoom-range": (["pre_stem={zoom: 1}"], "pre_stem.zoom: must be < 1"),
    "contrast-range": (["pre_stem={contrast: -0.1}"], "pre_stem.contrast: must be > 0"),
    "contrast-text": (["pre_stem={contrast: high}"], "pre_stem.contrast: must be a number"),
    "flip-mode": (["pre_stem={flip: diagonal}"], "pre_stem.flip: must be one of"),
    "empty-pre-stem": (["pre_stem={}"], "pre_stem: an empty pre_stem does nothing"),
    "resize-and-crop": (
        ["pre_stem={resizing: true, crop: true}"],
        "pre_stem: resizing and crop both",
    ),
    "zero-scale": (["pre_stem={rescaling: {scale: 0}}"], "scale must not be 0"),
    "std-zero": (
        ["pre_stem={normalization: {mean: [0], std: [0]}}"],
        "pre_stem.normalization.std[0]: must be > 0",
    ),
    "mean-std-lengths": (
        ["pre_stem={normalization: {mean: [0, 0, 0], std: [1]}}"],
        "pre_stem.normalization: mean has 3 value(s) but std has 1",
    ),
    "normalization-channels": (
        ["pre_stem={normalization: {mean: [0, 0], std: [1, 1]}}"],
        "pre_stem.normalization: mean and std have 2 values, but the input has 3 channel(s)",
    ),
    "pre-stem-unknown": (["pre_stem={blur: 2}"], "pre_stem.blur: unknown field"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_fields_get_one_clear_line(case, capsys, tmp_path):
    overrides, message = BAD[case]
    target = tmp_path / "out.py"
    argv = ["generate", "resnet18", "-o", str(target)]
    for item in overrides:
        argv += ["--set", item]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("error: resnet18: "), err
    assert message in err, err
    assert not target.exists()


@pytest.mark.parametrize(
    "preset, overrides, message",
    [
        (
            "squeezenet1_1",
            ["n_classes=null", "classifier.heads=[{name: a, n_classes: 2}]"],
            "classifier.heads: not available with classifier kind 'conv'",
        ),
        (
            "inception_v1",
            ["n_classes=null", "classifier.heads=[{name: a, n_classes: 2}]"],
            "classifier.heads: not available with auxiliary classifiers",
        ),
        (  # the other architectures: tests/test_pre_stem_architectures.py
            "conv_autoencoder",
            ["pre_stem={flip: horizontal}"],
            "pre_stem.flip: architecture 'autoencoder' takes only the deterministic",
        ),
    ],
)
def test_heads_refuse_classifiers_they_do_not_fit(preset, overrides, message, capsys):
    argv = ["generate", preset]
    for item in overrides:
        argv += ["--set", item]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


# --------------------------------------------------------------------------- head names


CLASSIFIERS = [preset for preset in PRESETS if architecture(preset) == "classifier"]
SPLIT_RESNEXT = ["learner.grouped_conv=split", "learner.groups=[{n_filters: 64, n_blocks: 2}]"]


def reserved(plan_, name: str) -> bool:
    return any(re.fullmatch(pattern, name) for _, pattern in plan_.layer_names)


def assert_every_layer_name_is_reserved(preset, model, plan_) -> None:
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    heads = {head.name for head in plan_.heads}  # the heads themselves, checked against it
    free = [name for name in names if not reserved(plan_, name) and name not in heads]
    assert not free, f"{preset}: layers outside its plan's layer_names: {free[:10]}"


@pytest.mark.slow
@pytest.mark.parametrize("preset", CLASSIFIERS)
def test_full_size_every_layer_name_of_a_classifier_is_reserved_by_its_plan(preset):
    """The patterns a head name is checked against cover every layer Keras builds (the
    classifier, auxiliary classifiers and pre-stem included), so no head can collide: the
    preset's shared full-size model (conftest.full_size), every block of every group."""
    model = full_size(preset, "procedural").model
    assert_every_layer_name_is_reserved(preset, model, plan(preset))


@pytest.mark.slow
def test_every_layer_name_of_a_split_resnext_is_reserved_by_its_plan():
    """The same for ResNeXt's split-transform-merge form (not a preset's default)."""
    namespace = emitted("resnext50_32x4d", "procedural", SPLIT_RESNEXT)
    model = namespace["build_model"](input_shape=small_input("resnext50_32x4d"))
    plan_ = plan_for("resnext50_32x4d", SPLIT_RESNEXT)
    assert_every_layer_name_is_reserved("resnext50_32x4d", model, plan_)


NAME_CLASHES = {
    "stem": ("multitask_resnet", [], "conv1_conv", "the resnet stem names its layers"),
    "block": ("multitask_resnet", [], "conv2_block1_out", "the basic learner names its layers"),
    "input": ("multitask_resnet", [], "input_layer", "the input names its layers"),
    "vgg": ("multilabel_vgg", [], "block1_conv1", "the vgg learner names its layers"),
    "pre-stem": (
        "augmented_resnet",
        ["n_classes=null"],
        "pre_stem_flip",
        "the pre-stem names its layers",
    ),
    "densenet": ("densenet121", ["n_classes=null"], "bn", "the dense learner names its layers"),
}


@pytest.mark.parametrize("case", sorted(NAME_CLASHES))
def test_a_head_named_like_a_layer_of_the_model_is_refused(case, capsys):
    preset, overrides, name, message = NAME_CLASHES[case]
    if plan(preset).heads:
        head = f"classifier.heads.0.name={name}"
    else:  # overrides drop n_classes
        head = f"classifier.heads=[{{name: {name}, n_classes: 2}}]"
    argv = ["generate", preset]
    for item in [*overrides, head]:
        argv += ["--set", item]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"classifier.heads[0].name: {name!r} is reserved for the model's own layers" in err
    assert message in err and "pick another" in err, err


def test_a_head_named_like_a_layer_of_another_network_is_fine():
    """Only the pieces this model has reserve names: a ResNet (basic blocks, no
    pre-activation) has no post_bn, no DenseNet bn, no Inception conv2d_1."""
    for name in ("post_bn", "bn", "conv2d_1", "fire2_concat", "category"):
        plan_for("multitask_resnet", [f"classifier.heads.0.name={name}"])
