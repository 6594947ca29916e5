"""MobileNetV2 (keras.applications.MobileNetV2 at alpha 1.0, 0.35 and 1.4).

The generic checks run in test_models.py: the reference counts, every weighted layer of
keras.applications.MobileNetV2(alpha=...) by name at full size with equal logits (all
three alphas, both styles), styles, training, round trip, backend parity, head switches.
Here: the multiply-adds, alpha as data in the file, the rounding to multiples of 8, the
padding of a strided block on odd sides (keras' correct_pad), which blocks add their
input back, and the spec rules of the new learner.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import STYLES, assert_one_spec_error, build, cli_errors, golden_path, plan
from test_models import assert_same_network_as

from generator.pieces.blocks.inverted_residual import make_divisible
from generator.pipeline import plan_for

MOBILENET_V2S = {"mobilenet_v2": 1.0, "mobilenet_v2_0_35": 0.35, "mobilenet_v2_1_4": 1.4}
# Million multiply-adds at 224x224: the paper's Table 4 gives 300M for alpha 1.0 (the plan:
# 300.8M), the published checkpoints' table 59M at 0.35 and 582M at 1.4.
PUBLISHED_MACS = {"mobilenet_v2": 300, "mobilenet_v2_0_35": 59, "mobilenet_v2_1_4": 582}


@pytest.mark.parametrize("preset", sorted(MOBILENET_V2S))
def test_multiply_adds_are_the_published_ones(preset):
    assert abs(plan(preset).total_macs / 1e6 - PUBLISHED_MACS[preset]) < 1


def test_widths_round_to_multiples_of_eight_as_keras_does():
    """keras.applications' _make_divisible: the nearest multiple of 8, at least 8, never
    more than 10% under the value."""
    assert [make_divisible(v) for v in (5, 8.4, 11.2, 12, 16 * 0.35, 32 * 1.4, 1280 * 1.4)] == [
        8, 8, 16, 16, 8, 48, 1792,
    ]  # fmt: skip
    assert make_divisible(11.9) == 16  # 8 would be 33% under
    assert make_divisible(1e-6) == 8  # no alpha rounds a block to zero channels


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("preset", sorted(MOBILENET_V2S))
def test_alpha_is_data_in_the_file_not_baked_into_widths(preset, style):
    """Every preset's file holds the paper's widths and its alpha; the code scales them."""
    text = golden_path(preset, style).read_text(encoding="utf-8")
    assert f'"alpha": {MOBILENET_V2S[preset]},' in text
    assert '{"n_filters": 320, "n_blocks": 1, "strides": 1, "expansion": 6}' in text
    assert '"last_filters": 1280,' in text
    assert "make_divisible(int(n_filters * alpha))" in text
    assert "make_divisible(32 * alpha)" in text
    assert "def make_divisible(value, divisor=8):" in text


@pytest.mark.parametrize("style", STYLES)
def test_odd_sides_pad_as_keras_does(style):
    """At 75x75 the strided blocks meet odd sides (38, 19, 10 ... after the stem): one more
    row and column of zeros at the top and left there (keras' correct_pad). Against
    keras.applications.MobileNetV2(alpha=0.35) at that size: the same weighted layers,
    and with its weights the same logits; without the top, at any size, the same maps
    (an unknown side pads at the bottom and right only, as keras does)."""
    shape = (75, 75, 3)
    kwargs = dict(weights=None, classes=10, classifier_activation=None)
    reference = keras.applications.MobileNetV2(input_shape=shape, alpha=0.35, **kwargs)
    ours = build(
        "mobilenet_v2_0_35", style, input_shape=shape, n_classes=10, classifier_activation=None
    )
    assert ours.count_params() == reference.count_params()
    assert_same_network_as(reference, ours, f"mobilenet_v2_0_35 ({style}, 75x75)")
    pads = {layer.name: layer.padding for layer in ours.layers if layer.name.endswith("_pad")}
    assert pads["block_1_pad"] == ((0, 1), (0, 1))  # 38x38
    assert pads["block_3_pad"] == ((1, 1), (1, 1))  # 19x19
    x = np.random.default_rng(4).standard_normal((2, *shape), dtype=np.float32)
    diff = float(np.max(np.abs(np.asarray(ours(x)) - np.asarray(reference(x)))))
    assert diff < 1e-5, diff

    features = build("mobilenet_v2_0_35", style, include_top=False)
    keras_features = keras.applications.MobileNetV2(
        input_shape=(None, None, 3), alpha=0.35, include_top=False, weights=None
    )
    features.set_weights(keras_features.get_weights())
    for side in (75, 64):
        y = np.random.default_rng(side).standard_normal((1, side, side, 3), dtype=np.float32)
        got, want = np.asarray(features(y)), np.asarray(keras_features(y))
        assert got.shape == want.shape
        assert float(np.max(np.abs(got - want))) < 1e-5, side


def test_which_blocks_add_their_input_back():
    """The shortcut joins a block's input and output where both stride and width keep:
    the later blocks of each group, and none at a group's first block here (every group's
    width grows); block 0 has no expansion convolution (expansion 1)."""
    model = build("mobilenet_v2", "procedural", input_shape=(96, 96, 3), include_top=False)
    names = {layer.name for layer in model.layers}
    adds = sorted(int(n.split("_")[1]) for n in names if n.startswith("block_") and "add" in n)
    assert adds == [2, 4, 5, 7, 8, 9, 11, 12, 14, 15]
    assert "expanded_conv_add" not in names
    assert not any(name.startswith("expanded_conv_expand") for name in names)
    assert "block_1_expand" in names and "expanded_conv_depthwise" in names
    assert tuple(model.output.shape) == (None, 3, 3, 1280)
    assert model.get_layer("Conv_1_bn").momentum == 0.999


@pytest.mark.parametrize("alpha, last", [(0.35, 1280), (1.0, 1280), (1.4, 1792), (2.0, 2560)])
def test_the_last_convolution_grows_only_above_alpha_one(alpha, last):
    sized = plan_for("mobilenet_v2", [f"learner.alpha={alpha}"])
    conv_1 = next(stage for stage in sized.stages if stage.prefix == "Conv_1")
    assert conv_1.output_shape[-1] == last
    model = build("mobilenet_v2", "oop", input_shape=(64, 64, 3), include_top=False,
                  metaparameters={"alpha": alpha})  # fmt: skip
    assert model.output.shape[-1] == last


@pytest.mark.parametrize(
    "sets, field, reason",
    [
        (["learner.alpha=0"], "learner.alpha", "must be > 0.0, got 0"),
        (["learner.groups.1.expansion=0"], "learner.groups[1].expansion", "must be >= 1, got 0"),
        (["learner.last_filters=0"], "learner.last_filters", "must be >= 1, got 0"),
    ],
)
def test_bad_metaparameters_are_one_line_spec_errors(sets, field, reason, capsys):
    assert_one_spec_error("mobilenet_v2", sets, field, reason, capsys)


def test_its_stem_needs_a_learner_with_alpha(capsys):
    code, lines = cli_errors(["generate", "resnet18", "--set", "stem.kind=mobilenet_v2"], capsys)
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        "error: resnet18: stem.kind: the mobilenet_v2 stem takes learner.alpha, which a basic "
        "learner does not have (a depthwise_separable or inverted_residual"
    ), lines
