"""The convolutional AutoEncoder (the slides' 32x32x3 example).

The generic checks (styles, training step, files, save and load) run in test_models.py and
test_roundtrip.py. Here: the layers the slides describe (and not their decoder bugs), the
output shaped like the input for every valid spec, the plan's refusal of an input that
cannot be halved that many times, the encoder and decoder built alone, the acceptance run
(30 steps on smooth blobs halve the reconstruction loss) and the `autoencoder:` spec rules.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import STYLES, assert_edit_is_refused, build, golden_module, model_class, plan

from generator.cli import main
from generator.errors import SpecError
from generator.pipeline import plan_for

AUTOENCODER = "conv_autoencoder"
SLIDES_INPUT = (32, 32, 3)
SLIDES_FILTERS = [64, 32, 32]
both_styles = pytest.mark.parametrize("style", STYLES)


def parts(style, **kwargs):
    """(model, encoder, decoder) of one build; kwargs: input_shape, metaparameters."""
    module = golden_module(AUTOENCODER, style)
    if style == "procedural":
        model = module.build_model(**kwargs)
        return model, model.get_layer("encoder"), model.get_layer("decoder")
    overrides = kwargs.pop("metaparameters", {})
    instance = model_class(module, AUTOENCODER)(**kwargs, **overrides)
    return instance.model, instance.encoder_model, instance.decoder_model


def builders(style):
    """build_encoder and build_decoder of either style."""
    module = golden_module(AUTOENCODER, style)
    if style == "procedural":
        return module.build_encoder, module.build_decoder
    instance = model_class(module, AUTOENCODER)()
    return instance.build_encoder, instance.build_decoder


def blobs(n, shape, seed=0):
    """Smooth synthetic images: three coloured Gaussian blobs each, values in [0, 1]."""
    rng = np.random.default_rng(seed)
    height, width, channels = shape
    rows, cols = np.mgrid[0:height, 0:width]
    images = np.zeros((n, *shape), np.float32)
    for image in images:
        for _ in range(3):
            row, col = rng.uniform(0, height), rng.uniform(0, width)
            radius = rng.uniform(3, 8)
            blob = np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * radius**2))
            image += blob[..., None] * rng.uniform(0, 1, channels)
    return np.clip(images, 0, 1)


@both_styles
def test_the_slides_autoencoder(style):
    model, encoder, decoder = parts(style)
    assert tuple(model.input.shape) == (None, *SLIDES_INPUT)
    assert tuple(model.output.shape) == (None, *SLIDES_INPUT)
    convs = [layer for layer in encoder.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.strides, c.padding) for c in convs] == [
        (f, (3, 3), (2, 2), "same") for f in SLIDES_FILTERS
    ]
    assert tuple(encoder.output.shape) == (None, 4, 4, 32)  # H and W / 8
    # The mirror: transposed convolutions over the filters in reverse order, padded "same"
    # (the slides' decoder skips one and loses the padding), then one conv to 3 channels.
    layers = [layer for layer in decoder.layers if not isinstance(layer, keras.layers.InputLayer)]
    deconvs, last = layers[:-1], layers[-1]
    assert all(type(layer) is keras.layers.Conv2DTranspose for layer in deconvs)
    assert [(d.filters, d.kernel_size, d.strides, d.padding) for d in deconvs] == [
        (f, (3, 3), (2, 2), "same") for f in reversed(SLIDES_FILTERS)
    ]
    assert type(last) is keras.layers.Conv2D and last.filters == SLIDES_INPUT[-1]
    assert tuple(last.strides) == (1, 1) and last.get_config()["activation"] == "sigmoid"
    assert model.count_params() == plan(AUTOENCODER).total_params
    assert model.count_params() == encoder.count_params() + decoder.count_params()


SHAPES = [
    ((32, 32, 3), [64, 32, 32]),
    ((48, 80, 1), [16, 8]),  # not square, one channel
    ((64, 64, 4), [8, 16, 32, 64]),  # widening filters, four halvings
    ((8, 8, 2), [5]),
]


@pytest.mark.parametrize("shape, filters", SHAPES)
@both_styles
def test_the_output_has_the_input_shape(style, shape, filters):
    assert plan_for(AUTOENCODER, [f"input_shape={list(shape)}", f"autoencoder.filters={filters}"])
    model, encoder, decoder = parts(style, input_shape=shape, metaparameters={"filters": filters})
    assert tuple(model.output.shape) == (None, *shape)
    factor = 2 ** len(filters)
    latent = (None, shape[0] // factor, shape[1] // factor, filters[-1])
    assert tuple(encoder.output.shape) == tuple(decoder.input.shape) == latent
    x = blobs(2, shape, seed=1)
    assert np.asarray(model.predict_on_batch(x)).shape == x.shape


@pytest.mark.parametrize(
    "overrides, side, factor",
    [
        (["input_shape=[30, 30, 3]"], "30x30", 8),
        (["input_shape=[32, 36, 3]"], "32x36", 8),
        (["autoencoder.filters=[8, 8, 8, 8, 8, 8]"], "32x32", 64),
    ],
)
def test_an_input_that_cannot_be_halved_is_refused(overrides, side, factor, capsys, tmp_path):
    with pytest.raises(SpecError) as info:
        plan_for(AUTOENCODER, overrides)
    text = str(info.value)
    assert text.startswith("conv_autoencoder: input_shape: "), text
    assert f"{side} cannot be halved" in text and f"multiples of {factor}" in text, text
    out = tmp_path / "ae.py"
    argv = ["generate", AUTOENCODER, "-o", str(out)]
    for item in overrides:
        argv += ["--set", item]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and not out.exists(), err


@both_styles
def test_the_builders_refuse_such_an_input_too(style):
    with pytest.raises(ValueError, match="multiples of 8"):
        parts(style, input_shape=(30, 30, 3))


@both_styles
def test_encoder_and_decoder_build_alone(style):
    build_encoder, build_decoder = builders(style)
    encoder, decoder = build_encoder(), build_decoder()
    assert (encoder.name, decoder.name) == ("encoder", "decoder")
    assert tuple(encoder.input.shape) == (None, *SLIDES_INPUT)
    assert tuple(decoder.input.shape) == tuple(encoder.output.shape) == (None, 4, 4, 32)
    assert tuple(decoder.output.shape) == (None, *SLIDES_INPUT)
    # The autoencoder is exactly decoder(encoder(x)) with its own encoder and decoder.
    model, inner_encoder, inner_decoder = parts(style)
    x = blobs(2, SLIDES_INPUT, seed=2)
    direct = inner_decoder.predict_on_batch(inner_encoder.predict_on_batch(x))
    np.testing.assert_allclose(model.predict_on_batch(x), direct, atol=1e-6)
    with pytest.raises(ValueError, match="nope"):
        build_encoder(metaparameters={"nope": 1})


@pytest.mark.slow
@both_styles
def test_thirty_steps_halve_the_reconstruction_loss(style):
    keras.utils.set_random_seed(0)
    model = build(AUTOENCODER, style)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    images = blobs(32, SLIDES_INPUT, seed=3)
    before = float(model.evaluate(images, images, verbose=0))
    for _ in range(30):
        model.train_on_batch(images, images)
    after = float(model.evaluate(images, images, verbose=0))
    assert after <= 0.5 * before, (before, after)
    # More than the average image: it reconstructs each image, not the batch mean.
    mean_image = float(np.mean((images - images.mean(axis=0)) ** 2))
    assert after < 0.75 * mean_image, (after, mean_image)


# ------------------------------------------------------------------ spec rules


def _edit(**fields):
    def edit(data):
        for key, value in fields.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value

    return edit


def _filters(value):
    def edit(data):
        data["autoencoder"]["filters"] = value

    return edit


SPEC_ERRORS = {
    "no-filters": (_filters([]), "autoencoder.filters: must have at least 1 item(s), got 0"),
    "zero-filters": (_filters([64, 0]), "autoencoder.filters[1]: must be >= 1, got 0"),
    "without-its-section": (_edit(autoencoder=None), "autoencoder: required for architecture"),
    "with-a-learner": (
        _edit(learner={"block": "vgg", "groups": [{"n_filters": 8, "n_layers": 1}]}),
        "learner: does not apply to architecture 'autoencoder'",
    ),
    "with-a-stem": (_edit(stem={"kind": "resnet"}), "stem: does not apply to architecture"),
    "with-classes": (_edit(n_classes=10), "n_classes: applies only to architecture"),
    "with-conventions": (
        _edit(conventions={"bn_epsilon": 0.001}),
        "conventions: do not apply to architecture 'autoencoder'",
    ),
    "on-a-classifier": (
        _edit(
            architecture="classifier",
            learner={"block": "vgg", "groups": [{"n_filters": 8, "n_layers": 1}]},
            classifier={"kind": "avg_pool"},
        ),
        "autoencoder: does not apply to architecture 'classifier'",
    ),
    "unknown-activation": (
        _edit(autoencoder={"filters": [8], "output_activation": "tanh"}),
        "autoencoder.output_activation: must be one of",
    ),
}


@pytest.mark.parametrize("case", SPEC_ERRORS)
def test_spec_errors_are_one_line(case):
    edit, message = SPEC_ERRORS[case]
    assert_edit_is_refused(AUTOENCODER, edit, message)
