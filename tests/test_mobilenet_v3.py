"""MobileNetV3 (keras.applications.MobileNetV3Small / Large, and their minimalistic=True).

The generic checks run in test_models.py: the reference counts, every weighted layer of
keras' network by name at full size with equal outputs (all four presets, both styles),
styles, training, round trip, backend parity, head switches. Here: the nonlinearities as
keras defines them, the block table as data (and the minimalistic table as the full one
with 3x3 kernels, ReLU and no SE gates), the padding of a 5x5 strided block on odd sides,
the width multiplier against keras' own builder, and the spec rules of the new pieces.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import STYLES, assert_one_spec_error, build, golden_path, plan
from test_models import assert_same_network_as

from generator.pipeline import plan_for

V3 = ("mobilenet_v3_small", "mobilenet_v3_large")
MINIMALISTIC = {f"{preset}_minimalistic": preset for preset in V3}


def test_hard_swish_and_hard_sigmoid_are_keras_own():
    """The keras activations the files name: hard_sigmoid(x) = relu6(x + 3) / 6 (the SE
    gate; keras.applications writes it out as layers) and hard_swish(x) = x * that."""
    x = np.linspace(-5, 5, 101, dtype=np.float32)
    gate = np.clip(x + 3, 0, 6) / 6
    got = keras.ops.convert_to_numpy(keras.activations.get("hard_sigmoid")(x))
    np.testing.assert_allclose(got, gate, atol=1e-6)
    got = keras.ops.convert_to_numpy(keras.activations.get("hard_swish")(x))
    np.testing.assert_allclose(got, x * gate, atol=1e-6)


@pytest.mark.parametrize("preset", sorted(MINIMALISTIC))
def test_the_minimalistic_table_is_the_full_one_with_3x3_relu_and_no_gates(preset):
    full = plan(MINIMALISTIC[preset]).spec.learner
    minimal = plan(preset).spec.learner
    assert minimal.nonlinearity == "relu" and full.nonlinearity == "hard_swish"
    assert len(minimal.groups) == len(full.groups)
    for group, full_group in zip(minimal.groups, full.groups, strict=True):
        for block, full_block in zip(group.blocks, full_group.blocks, strict=True):
            assert (block.n_filters, block.expansion, block.strides) == (
                full_block.n_filters, full_block.expansion, full_block.strides,
            )  # fmt: skip
            assert block.kernel_size == 3 and not block.se and block.nonlinearity == "relu"
    assert any(block.se for group in full.groups for block in group.blocks)
    assert {block.kernel_size for group in full.groups for block in group.blocks} == {3, 5}


@pytest.mark.parametrize("style", STYLES)
def test_the_block_table_is_data_in_the_file(style):
    text = golden_path("mobilenet_v3_large", style).read_text(encoding="utf-8")
    assert '"expansion": 2.3,' in text and '"nonlinearity": "hard_swish",' in text
    assert '"se_ratio": 0.25,' in text and '"hidden_units": 1280,' in text
    assert 'make_divisible(params["n_filters"] * alpha)' in text
    assert "def squeeze_excite(" in text


@pytest.mark.parametrize("style", STYLES)
def test_odd_sides_pad_as_keras_does(style):
    """At 75x75 the strided blocks meet odd and even sides with 3x3 and 5x5 kernels: keras'
    correct_pad puts k // 2 zeros at the bottom and right, one fewer at the top and left of
    an even side. Against keras.applications.MobileNetV3Small
    at that size: the same weighted layers, and with its weights the same outputs."""
    shape = (75, 75, 3)
    reference = keras.applications.MobileNetV3Small(
        input_shape=shape, weights=None, classes=10, classifier_activation=None
    )
    ours = build(
        "mobilenet_v3_small", style, input_shape=shape, n_classes=10, classifier_activation=None
    )
    assert ours.count_params() == reference.count_params()
    assert_same_network_as(reference, ours, f"mobilenet_v3_small ({style}, 75x75)")
    pads = {layer.name: layer.padding for layer in ours.layers if layer.name.endswith("_pad")}
    assert pads["expanded_conv_depthwise_pad"] == ((0, 1), (0, 1))  # 38x38, 3x3
    assert pads["expanded_conv_1_depthwise_pad"] == ((1, 1), (1, 1))  # 19x19, 3x3
    assert pads["expanded_conv_3_depthwise_pad"] == ((1, 2), (1, 2))  # 10x10, 5x5
    assert pads["expanded_conv_8_depthwise_pad"] == ((2, 2), (2, 2))  # 5x5, 5x5
    x = np.random.default_rng(4).uniform(0, 255, (2, *shape)).astype(np.float32)
    diff = float(np.max(np.abs(np.asarray(ours(x)) - np.asarray(reference(x)))))
    assert diff < 1e-5, diff


@pytest.mark.parametrize("alpha", [0.75, 1.5])
@pytest.mark.parametrize(
    "preset, builder", [(V3[0], "MobileNetV3Small"), (V3[1], "MobileNetV3Large")]
)
def test_the_width_multiplier_is_keras_own(preset, builder, alpha):
    """alpha scales every block (rounded to a multiple of 8), not the stem's 16 filters;
    above 1 it widens conv_1's input and conv_2 too: the plan's count is keras' own
    builder's at that alpha."""
    reference = getattr(keras.applications, builder)(
        input_shape=(96, 96, 3), alpha=alpha, weights=None, classes=10
    )
    sized = plan_for(preset, ["input_shape=[96, 96, 3]", "n_classes=10", f"learner.alpha={alpha}"])
    assert sized.total_params == reference.count_params()


def test_which_blocks_have_a_gate_and_which_add_their_input_back():
    model = build("mobilenet_v3_large", "procedural", input_shape=(64, 64, 3), include_top=False)
    names = {layer.name for layer in model.layers}
    gated = sorted(
        int(name.split("_")[2]) for name in names if name.endswith("_squeeze_excite_mul")
    )
    assert gated == [3, 4, 5, 10, 11, 12, 13, 14]
    added = sorted(
        int(name.split("_")[2])
        for name in names
        if name.endswith("_add") and name != "expanded_conv_add"
    )
    assert added == [2, 4, 5, 7, 8, 9, 11, 13, 14]
    assert "expanded_conv_add" in names  # block 0: 16 in, 16 out, stride 1
    assert not any(name.startswith("expanded_conv_expand") for name in names)
    # keras saves "hard_swish" under its other name, hard_silu
    assert model.get_layer("conv_1_act").get_config()["activation"] == "hard_silu"


@pytest.mark.parametrize(
    "preset, sets, field, reason",
    [
        ("mobilenet_v3_small", ["classifier.hidden_units=0"], "classifier.hidden_units",
         "must be >= 1, got 0"),
        ("mobilenet_v3_small", ["learner.nonlinearity=tanh"], "learner.nonlinearity", "relu"),
        ("mobilenet_v3_small", ["learner.groups.1.blocks.0.expansion=0"],
         "learner.groups[1].blocks[0].expansion", "must be > 0"),
        ("mobilenet_v3_small", ["learner.se_ratio=0"], "learner.se_ratio", "must be > 0"),
        ("resnet18", ["classifier.kind=mobilenet_v3", "classifier.hidden_units=64"],
         "classifier.kind", "the mobilenet_v3 classifier takes learner.alpha, which a basic "
         "learner does not have"),
        ("resnet18", ["classifier.kind=mobilenet_v3"], "classifier",
         "hidden_units: the mobilenet_v3 classifier needs it"),
        ("resnet18", ["stem.kind=mobilenet_v3"], "stem.kind",
         "the mobilenet_v3 stem takes learner.nonlinearity, which a basic learner does not "
         "have (a mobilenet_v3 learner has it)"),
    ],
)  # fmt: skip
def test_bad_metaparameters_are_one_line_spec_errors(preset, sets, field, reason, capsys):
    assert_one_spec_error(preset, sets, field, reason, capsys)
