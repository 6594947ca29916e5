"""SqueezeNet 1.0 and 1.1 (torchvision) and the paper's simple and complex bypass variants.

The generic checks (reference counts for squeezenet1_0 and squeezenet1_1, styles, training,
files) run in test_models.py. Here: the fire module (its expand_3x3 really is 3x3, the
slides' bug), the stems, where the max pools sit and the sizes they give (PyTorch's
ceil_mode, emulated exactly), the bypasses and their counts, the convolutional classifier
with the head switches, and the spec rules of the new stem, learner and classifier.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from conftest import STYLES, build, golden_module, plan

from generator.errors import SpecError
from generator.pipeline import plan_for

SQUEEZENETS = [
    "squeezenet1_0",
    "squeezenet1_1",
    "squeezenet1_0_simple_bypass",
    "squeezenet1_0_complex_bypass",
]
# preset: (conv1 filters, conv1 kernel, the fire modules each max pool follows)
LAYOUT = {
    "squeezenet1_0": (96, 7, [4, 8]),
    "squeezenet1_1": (64, 3, [3, 5]),
}
# torchvision's Fire(inplanes, squeeze, expand1x1, expand3x3), fire2 ... fire9
TORCHVISION_FIRES = {
    "squeezenet1_0": [
        (96, 16, 64, 64), (128, 16, 64, 64), (128, 32, 128, 128), (256, 32, 128, 128),
        (256, 48, 192, 192), (384, 48, 192, 192), (384, 64, 256, 256), (512, 64, 256, 256),
    ],
    "squeezenet1_1": [
        (64, 16, 64, 64), (128, 16, 64, 64), (128, 32, 128, 128), (256, 32, 128, 128),
        (256, 48, 192, 192), (384, 48, 192, 192), (384, 64, 256, 256), (512, 64, 256, 256),
    ],
}  # fmt: skip
SMALL = (64, 64, 3)
both_styles = pytest.mark.parametrize("style", STYLES)


def random_batch(shape, batch=2, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, *shape), dtype=np.float32)


def torch_pool_side(side: int) -> int:
    """nn.MaxPool2d(3, 2, ceil_mode=True), no padding: ceil((side - 3) / 2) + 1."""
    return -(-(side - 3) // 2) + 1


def n_trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def fire_numbers(model) -> list[int]:
    return sorted(
        {int(m.group(1)) for m in (re.match(r"fire(\d+)_", x.name) for x in model.layers) if m}
    )


# --------------------------------------------------------------------------- fire modules


@pytest.mark.parametrize("preset", SQUEEZENETS)
@both_styles
def test_expand_3x3_is_a_3x3_convolution(preset, style):
    """KNOWN_BUGS: the slides write expand_3x3 with a (1, 1) kernel."""
    model = build(preset, style, input_shape=SMALL)
    assert fire_numbers(model) == list(range(2, 10))
    for number in range(2, 10):
        squeeze = model.get_layer(f"fire{number}_squeeze1x1")
        expand_1x1 = model.get_layer(f"fire{number}_expand1x1")
        expand_3x3 = model.get_layer(f"fire{number}_expand3x3")
        s = squeeze.filters
        assert tuple(squeeze.kernel_size) == (1, 1)
        assert tuple(expand_1x1.kernel_size) == (1, 1)
        assert tuple(expand_3x3.kernel_size) == (3, 3), f"fire{number}_expand3x3"
        assert expand_3x3.padding == "same"  # H, W kept: the two expands concatenate
        assert tuple(expand_3x3.kernel.shape) == (3, 3, s, 4 * s)
        assert expand_1x1.filters == expand_3x3.filters == 4 * s
        for conv in (squeeze, expand_1x1, expand_3x3):
            assert conv.use_bias and conv.get_config()["activation"] == "relu"
        concat = model.get_layer(f"fire{number}_concat")
        assert [t is expand_1x1.output for t in concat.input] == [True, False]
        assert concat.input[1] is expand_3x3.output
        assert concat.output.shape[-1] == 8 * s


@pytest.mark.parametrize("preset", ["squeezenet1_0", "squeezenet1_1"])
def test_fire_modules_are_torchvisions(preset):
    model = build(preset, "procedural", input_shape=SMALL)
    for number, (inplanes, squeeze, e1, e3) in enumerate(TORCHVISION_FIRES[preset], start=2):
        assert model.get_layer(f"fire{number}_squeeze1x1").input.shape[-1] == inplanes
        assert model.get_layer(f"fire{number}_squeeze1x1").filters == squeeze
        assert model.get_layer(f"fire{number}_expand1x1").filters == e1
        assert model.get_layer(f"fire{number}_expand3x3").filters == e3


@both_styles
def test_fire_block_tears_off(style):
    module = golden_module("squeezenet1_0", style)
    fire_block = module.fire_block if style == "procedural" else module.SqueezeNet1_0.fire_block
    inputs = keras.Input((7, 9, 24))
    block = keras.Model(inputs, fire_block(inputs, 5, name="probe"))
    assert block.output.shape == (None, 7, 9, 40)
    # 1x1 squeeze, 1x1 and 3x3 expands, all biased
    assert block.count_params() == (24 * 5 + 5) + (5 * 20 + 20) + (9 * 5 * 20 + 20)


# --------------------------------------------------------------------------- stems, pools


@pytest.mark.parametrize("preset", sorted(LAYOUT))
@both_styles
def test_stem_and_pool_positions(preset, style):
    filters, kernel, pools_after = LAYOUT[preset]
    model = build(preset, style)
    conv1 = model.get_layer("conv1")
    assert (conv1.filters, tuple(conv1.kernel_size), tuple(conv1.strides)) == (
        filters,
        (kernel, kernel),
        (2, 2),
    )
    assert conv1.padding == "valid" and conv1.use_bias
    # The order of the macro-architecture: conv1, pool1, fire modules with the pools between.
    sequence = []
    for layer in model.layers:
        match = re.match(r"(conv1|pool\d+|fire\d+)(_|$)", layer.name)
        if match and match.group(1) not in sequence:
            sequence.append(match.group(1))
    want = ["conv1", "pool1"]
    for number in range(2, 10):
        want.append(f"fire{number}")
        if number in pools_after:
            want.append(f"pool{number}")
    assert sequence == want

    # torchvision's sizes at 224: conv1 -> pool1 -> ... -> 13x13x512 features.
    side = (224 - kernel) // 2 + 1
    assert model.get_layer("conv1").output.shape[1:3] == (side, side)
    for pool in ["pool1", *(f"pool{n}" for n in pools_after)]:
        layer = model.get_layer(pool)
        assert isinstance(layer, keras.layers.MaxPooling2D)
        assert tuple(layer.pool_size) == (3, 3) and tuple(layer.strides) == (2, 2)
        side = torch_pool_side(side)
        assert layer.output.shape[1:3] == (side, side), pool
    assert model.get_layer("fire9_concat").output.shape[1:] == (13, 13, 512)


@pytest.mark.parametrize("preset", sorted(LAYOUT))
@pytest.mark.parametrize("shape", [(224, 224), (227, 227), (97, 99), (100, 131), (33, 40)])
def test_pool_sizes_match_ceil_mode_for_any_input(preset, shape):
    _, kernel, pools_after = LAYOUT[preset]
    model = build(preset, "procedural", input_shape=(*shape, 3), include_top=False)
    h, w = ((side - kernel) // 2 + 1 for side in shape)
    for pool in ["pool1", *(f"pool{n}" for n in pools_after)]:
        h, w = torch_pool_side(h), torch_pool_side(w)
        assert model.get_layer(pool).output.shape[1:3] == (h, w), (pool, shape)
    assert plan_for(preset, [f"input_shape=[{shape[0]}, {shape[1]}, 3]"]).stages[-2].output_shape[
        :2
    ] == (h, w)


def _ceil_mode_max_pool(maps: np.ndarray) -> np.ndarray:
    """Reference: PyTorch's MaxPool2d(3, 2, ceil_mode=True), windows clipped at the edge."""
    batch, h, w, c = maps.shape
    out_h, out_w = torch_pool_side(h), torch_pool_side(w)
    out = np.empty((batch, out_h, out_w, c), maps.dtype)
    for i in range(out_h):
        for j in range(out_w):
            out[:, i, j] = maps[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].max(axis=(1, 2))
    return out


@pytest.mark.parametrize("preset", sorted(LAYOUT))
def test_ceil_mode_pool_values(preset):
    """An even side leaves a partial last window; its padding must not change the max."""
    _, _, pools_after = LAYOUT[preset]
    model = build(preset, "procedural", input_shape=(97, 99, 3), include_top=False)
    pairs = [("conv1", "pool1")]
    pairs += [(f"fire{n}_concat", f"pool{n}") for n in pools_after]
    outputs = [model.get_layer(name).output for pair in pairs for name in pair]
    probe = keras.Model(model.input, outputs)
    got = probe(random_batch((97, 99, 3), seed=3), training=False)
    partial = False
    for index in range(len(pairs)):
        before, after = (np.asarray(t) for t in got[2 * index : 2 * index + 2])
        assert before.min() >= 0.0  # what makes the zero padding exact
        partial |= before.shape[1] % 2 == 0 or before.shape[2] % 2 == 0
        np.testing.assert_allclose(after, _ceil_mode_max_pool(before), rtol=0, atol=0)
    assert partial, "no pool here has a partial window; pick another input size"


# --------------------------------------------------------------------------- bypasses


def test_simple_bypass_adds_identity_shortcuts_around_fire3_5_7_9():
    model = build("squeezenet1_0_simple_bypass", "procedural")
    adds = {layer.name for layer in model.layers if isinstance(layer, keras.layers.Add)}
    assert adds == {"fire3_add", "fire5_add", "fire7_add", "fire9_add"}
    assert not [layer.name for layer in model.layers if layer.name.endswith("_bypass")]
    for number in (3, 5, 7, 9):
        add = model.get_layer(f"fire{number}_add")
        fire_input = model.get_layer(f"fire{number}_squeeze1x1").input
        assert any(t is fire_input for t in add.input)  # the identity
        assert any(t is model.get_layer(f"fire{number}_concat").output for t in add.input)
    plain = build("squeezenet1_0", "procedural")
    assert model.count_params() == plain.count_params() == 1_248_424
    assert plan("squeezenet1_0_simple_bypass").total_params == model.count_params()


def test_complex_bypass_adds_1x1_conv_shortcuts_around_the_others():
    model = build("squeezenet1_0_complex_bypass", "procedural")
    adds = {layer.name for layer in model.layers if isinstance(layer, keras.layers.Add)}
    assert adds == {f"fire{n}_add" for n in range(2, 10)}
    extra = 0
    for number, width in ((2, 128), (4, 256), (6, 384), (8, 512)):
        bypass = model.get_layer(f"fire{number}_bypass")
        assert tuple(bypass.kernel_size) == (1, 1) and bypass.filters == width
        assert bypass.get_config()["activation"] == "relu" and bypass.use_bias
        assert bypass.input is model.get_layer(f"fire{number}_squeeze1x1").input
        assert any(t is bypass.output for t in model.get_layer(f"fire{number}_add").input)
        extra += bypass.input.shape[-1] * width + width
    assert extra == 341_248
    assert model.count_params() == 1_248_424 + extra == n_trainable(model)
    assert plan("squeezenet1_0_complex_bypass").total_params == model.count_params()


# --------------------------------------------------------------------------- classifier


@both_styles
def test_conv_classifier_and_head_switches(style):
    preset = "squeezenet1_1"
    model = build(preset, style, input_shape=SMALL, n_classes=10)
    tail = [(type(layer).__name__, layer.name) for layer in model.layers[-4:]]
    assert tail == [
        ("Dropout", "top_dropout"),
        ("Conv2D", "top_conv"),
        ("GlobalAveragePooling2D", "avg_pool"),
        ("Activation", "predictions"),
    ]
    assert model.get_layer("top_dropout").rate == 0.5
    top_conv = model.get_layer("top_conv")
    assert (top_conv.filters, tuple(top_conv.kernel_size)) == (10, (1, 1))
    assert top_conv.get_config()["activation"] == "relu"
    assert model.get_layer("predictions").get_config()["activation"] == "softmax"
    x = random_batch(SMALL, seed=4)
    probabilities = model(x, training=False).numpy()
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    assert not any(isinstance(layer, keras.layers.Dense) for layer in model.layers)

    features = build(preset, style, input_shape=SMALL, include_top=False)
    assert features.output.shape == (None, 3, 3, 512)
    assert "top_conv" not in {layer.name for layer in features.layers}
    maps = features(x, training=False).numpy()
    for pooling, reduce in (("avg", np.mean), ("max", np.max)):
        pooled = build(preset, style, input_shape=SMALL, include_top=False, pooling=pooling)
        assert pooled.output.shape == (None, 512)
        pooled.set_weights(features.get_weights())
        np.testing.assert_allclose(pooled(x).numpy(), reduce(maps, axis=(1, 2)), atol=1e-5)

    logits = build(preset, style, input_shape=SMALL, n_classes=7, classifier_activation=None)
    assert logits.output.shape == (None, 7)
    assert logits.get_layer("predictions").get_config()["activation"] == "linear"
    scores = logits(x, training=False).numpy()
    assert scores.min() >= 0.0  # ReLU'd class maps, averaged: no softmax applied
    assert not np.allclose(scores.sum(axis=-1), 1.0)

    # Fully convolutional: any input size when the top is on.
    assert build(preset, style, input_shape=(None, None, 3)).output.shape == (None, 1000)
    for kwargs in (dict(pooling="bogus"), dict(pooling="avg"), dict(n_classes=0)):
        with pytest.raises(ValueError):
            build(preset, style, input_shape=SMALL, **kwargs)


@both_styles
def test_dropout_is_a_metaparameter(style):
    assert plan("squeezenet1_0").metaparameters["dropout"] == 0.5
    model = build("squeezenet1_0", style, input_shape=SMALL, metaparameters={"dropout": 0.25})
    assert model.get_layer("top_dropout").rate == 0.25


# --------------------------------------------------------------------------- spec


def _error(target: str, overrides: list[str]) -> SpecError:
    with pytest.raises(SpecError) as info:
        plan_for(target, overrides)
    return info.value


@pytest.mark.parametrize(
    "target, overrides, path, needle",
    [
        ("resnet18", ["stem.bn_relu=false"], "stem", "bn_relu"),
        ("squeezenet1_0", ["stem.kernel_size=0"], "stem.kernel_size", ">= 1"),
        (
            "squeezenet1_0",
            ["learner.groups.0.n_filters=[]"],
            "learner.groups[0].n_filters",
            "least",
        ),
        ("squeezenet1_0", ["learner.bypass=full"], "learner.bypass", "simple"),
        ("squeezenet1_0", ["classifier.dense_units=[10]"], "classifier", "dense_units"),
        ("squeezenet1_0", ["learner.groups.0.n_blocks=3"], "learner.groups[0].n_blocks", "unknown"),
        ("squeezenet1_0", ["input_shape=[8, 8, 3]"], "stem", "shrink"),
        ("squeezenet1_0", ["input_shape=[20, 20, 3]"], "learner.groups[1]", "max pool"),
    ],
    ids=[
        "bn-relu-on-resnet",
        "zero-kernel",
        "empty-group",
        "bad-bypass",
        "dense-units",
        "n-blocks",
        "tiny-input",
        "small-input",
    ],
)
def test_bad_specs_name_the_field(target, overrides, path, needle):
    error = _error(target, overrides)
    assert error.path == path, (error.path, error.reason)
    assert needle in error.reason, error.reason


def test_stem_kernel_defaults_to_7():
    spec = plan_for("squeezenet1_1", ["stem.kernel_size=null"]).spec
    assert spec.stem.kernel_size == 7
    assert plan_for("resnet18").spec.stem.kernel_size == 7  # the resnet kind's default
    assert plan_for("inception_v3").spec.stem.kernel_size is None  # the paper's stem
