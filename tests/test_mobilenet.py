"""MobileNet v1 (keras.applications.MobileNet at alpha 1.0, 0.75, 0.5 and 0.25).

The generic checks run in test_models.py: the reference counts, every weighted layer of
keras.applications.MobileNet(alpha=...) by name at full size with equal logits (all four
alphas, both styles), styles, training, round trip, backend parity, head switches. Here:
the paper's multiply-adds, alpha as data in the file, a depth multiplier against keras'
own, and the spec rules of the new learner and stem.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import STYLES, assert_one_spec_error, build, cli_errors, golden_path, plan
from test_models import assert_same_network_as

from generator.pipeline import plan_for

MOBILENETS = {
    "mobilenet": 1.0,
    "mobilenet_0_75": 0.75,
    "mobilenet_0_50": 0.5,
    "mobilenet_0_25": 0.25,
}
# The paper's Table 6 (MobileNet width multipliers at 224x224): million multiply-adds.
PAPER_MACS = {"mobilenet": 569, "mobilenet_0_75": 325, "mobilenet_0_50": 149, "mobilenet_0_25": 41}


@pytest.mark.parametrize("preset", sorted(MOBILENETS))
def test_multiply_adds_are_the_papers(preset):
    """The plan's multiply-accumulates at 224x224 (convolutions and the classifier), to
    the paper's million."""
    assert round(plan(preset).total_macs / 1e6) == PAPER_MACS[preset]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("preset", sorted(MOBILENETS))
def test_alpha_is_data_in_the_file_not_baked_into_widths(preset, style):
    """Every preset's file holds the paper's widths and its alpha; the code scales them."""
    text = golden_path(preset, style).read_text(encoding="utf-8")
    assert f'"alpha": {MOBILENETS[preset]},' in text
    assert '{"n_filters": 1024, "n_blocks": 2, "strides": 2}' in text
    assert "int(32 * alpha)" in text and "int(n_filters * alpha)" in text


@pytest.mark.parametrize("style", STYLES)
def test_a_depth_multiplier_builds_keras_own_network(style):
    """depth_multiplier=2 at alpha 0.25 and 96x96: the same weighted layers as
    keras.applications.MobileNet(alpha=0.25, depth_multiplier=2), equal logits."""
    shape = (96, 96, 3)
    reference = keras.applications.MobileNet(
        input_shape=shape, alpha=0.25, depth_multiplier=2, weights=None, classes=10,
        classifier_activation=None,
    )  # fmt: skip
    ours = build(
        "mobilenet_0_25", style, input_shape=shape, n_classes=10, classifier_activation=None,
        metaparameters={"depth_multiplier": 2},
    )  # fmt: skip
    assert ours.count_params() == reference.count_params()
    assert ours.get_layer("conv_dw_2").depth_multiplier == 2
    assert_same_network_as(reference, ours, f"mobilenet_0_25 ({style}, depth multiplier 2)")
    x = np.random.default_rng(4).standard_normal((2, *shape), dtype=np.float32)
    diff = float(np.max(np.abs(np.asarray(ours(x)) - np.asarray(reference(x)))))
    assert diff < 1e-5, diff
    sized = plan_for("mobilenet_0_25", ["input_shape=[96, 96, 3]", "n_classes=10"])
    assert sized.total_params < reference.count_params()  # the plan above is depth 1's
    doubled = plan_for(
        "mobilenet_0_25",
        ["input_shape=[96, 96, 3]", "n_classes=10", "learner.depth_multiplier=2"],
    )
    assert doubled.total_params == reference.count_params()


def test_the_strided_blocks_pad_then_stride_as_keras_does():
    """A strided block: one row and column of zeros at the bottom and right, then a valid
    3x3/2 depthwise convolution; the others "same" at stride 1 (keras.applications)."""
    model = build("mobilenet_0_25", "procedural", input_shape=(64, 64, 3), include_top=False)
    strided = [2, 4, 6, 12]
    for number in range(1, 14):
        layer = model.get_layer(f"conv_dw_{number}")
        want = (2, 2) if number in strided else (1, 1)
        assert tuple(layer.strides) == want, number
        assert layer.padding == ("valid" if number in strided else "same"), number
        names = {layer.name for layer in model.layers}
        assert (f"conv_pad_{number}" in names) == (number in strided), number
    assert tuple(model.output.shape) == (None, 2, 2, 256)  # 64 / 32, int(1024 * 0.25)


@pytest.mark.parametrize(
    "sets, field, reason",
    [
        (
            ["learner.alpha=0.01"],
            "learner.alpha",
            "the stem's conv1 would have int(32 * 0.01) = 0 channels; raise alpha",
        ),
        (
            ["learner.alpha=0.015"],
            "learner.alpha",
            "the stem's conv1 would have int(32 * 0.015) = 0 channels; raise alpha",
        ),
        (["learner.alpha=0"], "learner.alpha", "must be > 0.0, got 0"),
        (["learner.depth_multiplier=0"], "learner.depth_multiplier", "must be >= 1, got 0"),
        (["learner.depth_multiplier=1.5"], "learner.depth_multiplier", "a valid integer"),
    ],
)
def test_bad_widths_are_one_line_spec_errors(sets, field, reason, capsys):
    assert_one_spec_error("mobilenet_0_25", sets, field, reason, capsys)


def test_a_group_that_alpha_rounds_to_zero_is_named(capsys):
    """A pointwise width that rounds to zero names its group (the stem's is fine)."""
    code, lines = cli_errors(
        ["generate", "mobilenet", "--set", "learner.alpha=0.05",
         "--set", "learner.groups.0.n_filters=8"],
        capsys,
    )  # fmt: skip
    assert code == 2 and len(lines) == 1, lines
    assert (
        "learner.alpha: the pointwise convolutions of learner.groups[0] would have " in (lines[0])
    )
    assert "int(8 * 0.05) = 0 channels" in lines[0]
