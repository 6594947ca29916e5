"""The pre-stem with every architecture: a Siamese twin, an AutoEncoder, the detectors.

Siamese: the pre-stem sits inside the twin (both images of a pair go through it).
AutoEncoder: deterministic steps only, in front of the encoder; the model reconstructs
the pre-stemmed image, which is the target the emitted docstring and the harness train it
on. Detectors: photometric steps only (the boxes must still fit the image). In every case:
the plan counts what Keras builds, inference is deterministic, include_pre_stem=False builds
the same network on preprocessed images, and a refused step is one spec error line.
(The classifier case is tests/test_heads_pre_stem.py.)
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import STYLES

from generator.cli import main
from generator.harness import autoencoder_task, task_for_plan
from generator.pipeline import generate, plan_for

RESCALE = "rescaling: {scale: 0.00392156862745098}"
SMALL_VGG = "learner.groups=[{n_filters: 8, n_layers: 1}, {n_filters: 8, n_layers: 1}]"
SMALL_DETECTOR = [
    "input_shape=[48, 48, 3]",
    "n_classes=3",
    SMALL_VGG,
    "classifier.dense_units=[16]",
    "detector.n_regions=3",
]
# name -> (preset, overrides, class name, build arguments). Each has a pre-stem with a
# random step where the architecture allows one (it acts in training only).
CASES = {
    "siamese_resized": (
        "resnet18_twin",
        [
            "input_shape=[32, 32, 3]",
            f"pre_stem={{resizing: true, flip: horizontal, contrast: 0.2, {RESCALE}}}",
        ],
        "ResNet18Twin",
        {},
    ),
    "siamese_normalised": (
        "siamese_omniglot",
        ["twin.embedding_units=16", "pre_stem={normalization: {mean: [127.5], std: [60.0]}}"],
        "SiameseOmniglot",
        {},
    ),
    "autoencoder": (
        "conv_autoencoder",
        [f"pre_stem={{resizing: true, {RESCALE}}}"],
        "ConvAutoencoder",
        {},
    ),
    "rcnn": (
        "rcnn",
        [*SMALL_DETECTOR, "detector.crop_size=16", f"pre_stem={{contrast: 0.3, {RESCALE}}}"],
        "RCNN",
        {},
    ),
    "fast_rcnn": (
        "fast_rcnn",
        [
            *SMALL_DETECTOR,
            "detector.pool_size=2",
            "pre_stem={contrast: 0.3, normalization: {mean: [120, 110, 100], std: [60, 60, 60]}}",
        ],
        "FastRCNN",
        {},
    ),
}
both_styles = pytest.mark.parametrize("style", STYLES)
every_case = pytest.mark.parametrize("case", sorted(CASES))


def emitted(case: str, style: str) -> dict:
    preset, overrides, _, _ = CASES[case]
    namespace: dict = {"__name__": f"emitted_{case}_{style}"}
    exec(compile(generate(preset, style, overrides), f"{case}.py", "exec"), namespace)
    return namespace


def build(case: str, style: str, namespace=None, **kwargs):
    namespace = namespace or emitted(case, style)
    kwargs = {**CASES[case][3], **kwargs}
    if style == "procedural":
        return namespace["build_model"](**kwargs)
    return namespace[CASES[case][2]](**kwargs).model


def case_plan(case: str):
    preset, overrides, _, _ = CASES[case]
    return plan_for(preset, overrides)


def raw_inputs(case: str, batch: int = 2, seed: int = 0, side=None):
    """Raw pixels in [0, 255] for the model: images, a pair, or [images, boxes]."""
    spec = case_plan(case).spec
    height, width, channels = spec.input_shape
    if side is not None:
        height = width = side
    rng = np.random.default_rng(seed)

    def images():
        return rng.uniform(0, 255, (batch, height, width, channels)).astype("float32")

    if spec.architecture == "siamese":
        return [images(), images()]
    if spec.architecture in ("rcnn", "fast_rcnn"):
        corners = rng.uniform(0, 1, (batch, spec.detector.n_regions, 2, 2)) * [width, height]
        boxes = np.concatenate([corners.min(-2), corners.max(-2)], -1).astype("float32")
        return [images(), boxes]
    return images()


def preprocessed(case: str, inputs):
    """What the pre-stem does at inference, in NumPy: rescaling and normalisation (the
    random steps pass images through; resizing to the same size keeps them)."""
    pre_stem = case_plan(case).spec.pre_stem
    architecture = case_plan(case).spec.architecture

    def apply(x):
        if pre_stem.rescaling:
            x = x * pre_stem.rescaling.scale + pre_stem.rescaling.offset
        if pre_stem.normalization:
            mean = np.array(pre_stem.normalization.mean, "float32")
            std = np.array(pre_stem.normalization.std, "float32")
            x = (x - mean) / std
        return x.astype("float32")

    if architecture == "siamese":
        return [apply(x) for x in inputs]
    if architecture in ("rcnn", "fast_rcnn"):
        return [apply(inputs[0]), inputs[1]]  # the boxes are untouched
    return apply(inputs)


def outputs(result) -> list:
    results = result if isinstance(result, list) else [result]
    return [keras.ops.convert_to_numpy(r) for r in results]


def all_layer_names(model) -> list[str]:
    """Layer names, nested models (the Siamese twin) included."""
    names = []
    for layer in model.layers:
        names.append(layer.name)
        if isinstance(layer, keras.Model):
            names += all_layer_names(layer)
    return names


@every_case
@both_styles
def test_plan_counts_what_keras_builds(case, style):
    model = build(case, style)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    plan = case_plan(case)
    assert (plan.total_params, plan.trainable_params) == (model.count_params(), trainable)
    assert any(name.startswith("pre_stem_") for name in all_layer_names(model))


@every_case
@both_styles
def test_inference_is_deterministic_and_include_pre_stem_false_is_the_network(case, style):
    """Inference (training=False, predict) twice gives the same outputs, equal to the
    network built without its pre-stem on the images preprocessed by hand."""
    namespace = emitted(case, style)
    model = build(case, style, namespace)
    network = build(case, style, namespace, include_pre_stem=False)
    assert not [n for n in all_layer_names(network) if n.startswith("pre_stem_")]
    assert network.count_params() == model.count_params()
    network.set_weights(model.get_weights())  # the pre-stem holds no weights

    x = raw_inputs(case, seed=1)
    first = outputs(model(x, training=False))
    second = outputs(model(x, training=False))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(first, outputs(model.predict_on_batch(x)), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    alone = outputs(network(preprocessed(case, x), training=False))
    for a, b in zip(first, alone, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


@both_styles
def test_siamese_pre_stem_sits_in_the_shared_twin_and_takes_any_size(style):
    namespace = emitted("siamese_resized", style)
    if style == "procedural":
        twin = namespace["build_twin"]()
        bare = namespace["build_twin"](include_pre_stem=False)
    else:
        built = namespace["ResNet18Twin"]()
        twin, bare = built.twin, built.build_twin(include_pre_stem=False)
    assert tuple(twin.input.shape) == (None, None, None, 3)  # the pre-stem resizes
    assert tuple(bare.input.shape) == (None, 32, 32, 3)
    assert tuple(twin.output.shape) == (None, 512)  # the average-pooled embedding
    assert twin.get_layer("pre_stem_resizing") is not None
    model = build("siamese_resized", style, namespace)
    assert [layer.name for layer in model.layers].count("twin") == 1  # one twin, two calls
    left, right = raw_inputs("siamese_resized", side=45)
    assert tuple(model([left, right], training=False).shape) == (2, 1)


@both_styles
def test_autoencoder_reconstructs_the_pre_stemmed_image(style):
    """Its output has input_shape whatever the image size, and the docstring's recipe
    (preprocess = the pre-stem alone) gives the same target as the harness's task."""
    namespace = emitted("autoencoder", style)
    model = build("autoencoder", style, namespace)
    x = raw_inputs("autoencoder", batch=4, side=48)  # resized to 32x32 by the pre-stem
    assert tuple(model(x, training=False).shape) == (4, 32, 32, 3)
    text = generate(*CASES["autoencoder"][:1], style, CASES["autoencoder"][1])
    assert "the model reconstructs\n" in text and "preprocess.predict(images)" in text

    raw = keras.Input(shape=(None, None, 3))
    if style == "procedural":
        attach = namespace["pre_stem"]
    else:
        attach = namespace["ConvAutoencoder"]().pre_stem
    preprocess = keras.Model(raw, attach(raw, 32, 32))
    same = raw_inputs("autoencoder", batch=4)  # 32x32: resizing keeps them
    target = preprocess.predict(same, verbose=0)
    np.testing.assert_allclose(target, same / 255, atol=1e-5)

    options = task_for_plan(case_plan("autoencoder"))
    assert options["kind"] == "autoencoder" and options["pixels"]
    batch = autoencoder_task(model, 4, np.random.default_rng(0), options)
    assert batch.x.max() > 1.0  # raw pixels in
    np.testing.assert_allclose(batch.y[0], batch.x / 255, atol=1e-5)  # the pre-stemmed image

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    history = model.fit(same, target, epochs=3, batch_size=4, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


# --------------------------------------------------------------------------- spec errors


REFUSED = {
    "autoencoder-flip": (
        "conv_autoencoder",
        "pre_stem={flip: horizontal}",
        "pre_stem.flip: architecture 'autoencoder' takes only the deterministic pre-stem "
        "steps (resizing, rescaling, normalization)",
    ),
    "autoencoder-crop": (
        "conv_autoencoder",
        "pre_stem={crop: true}",
        "pre_stem.crop: architecture 'autoencoder' takes only the deterministic",
    ),
    "autoencoder-contrast": (
        "conv_autoencoder",
        "pre_stem={contrast: 0.2, rescaling: {scale: 0.5}}",
        "pre_stem.contrast: architecture 'autoencoder'",
    ),
    "rcnn-resizing": (
        "rcnn",
        "pre_stem={resizing: true}",
        "pre_stem.resizing: architecture 'rcnn' takes only the photometric pre-stem steps "
        "(contrast, rescaling, normalization): it would move the image under its boxes",
    ),
    "fast_rcnn-flip": (
        "fast_rcnn",
        "pre_stem={flip: horizontal, contrast: 0.1}",
        "pre_stem.flip: architecture 'fast_rcnn' takes only the photometric",
    ),
    "fast_rcnn-rotation": ("fast_rcnn", "pre_stem={rotation: 0.1}", "pre_stem.rotation:"),
    "rcnn-zoom": ("rcnn", "pre_stem={zoom: 0.1}", "pre_stem.zoom: architecture 'rcnn'"),
    "rcnn-crop": ("rcnn", "pre_stem={crop: true}", "pre_stem.crop: architecture 'rcnn'"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_steps_are_one_line(case, capsys, tmp_path):
    preset, override, message = REFUSED[case]
    target = tmp_path / "out.py"
    assert main(["generate", preset, "--set", override, "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {preset}: "), err
    assert message in err, err
    assert not target.exists()


@pytest.mark.parametrize(
    "preset, override",
    [
        ("siamese_omniglot", "pre_stem={crop: true, flip: horizontal, rotation: 0.1, zoom: 0.1}"),
        ("conv_autoencoder", "pre_stem={normalization: {mean: [0.5], std: [0.25]}}"),
        ("rcnn", "pre_stem={contrast: 0.5, normalization: {mean: [1], std: [2]}}"),
    ],
)
def test_allowed_steps_generate(preset, override):
    """Any step with a twin; the deterministic or photometric ones elsewhere."""
    text = generate(preset, "procedural", [override])
    assert "def pre_stem(" in text and "include_pre_stem=True" in text


@pytest.mark.parametrize("case", ["rcnn", "fast_rcnn", "autoencoder", "siamese_resized"])
def test_the_diagram_draws_the_pre_stem_after_the_input(case, capsys):
    preset, overrides, _, _ = CASES[case]
    argv = ["diagram", preset]
    for item in overrides:
        argv += ["--set", item]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "    input --> pre_stem\n" in text, text
    assert "pre_stem: " in text
