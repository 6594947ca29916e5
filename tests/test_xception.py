"""Xception (keras.applications.Xception).

The generic checks run in test_models.py: the reference count, every weighted layer of
keras.applications.Xception by name at full size with equal outputs (both styles), styles,
training, round trip, backend parity, head switches. Here: the multiply-adds, keras'
automatic names for the unnamed shortcut layers and adds (counted on from a stem that
takes such names too), which modules project their shortcut, the tail kept without the
top, and the spec rules of the new learner.
"""

from __future__ import annotations

import types

import pytest
from conftest import STYLES, assert_one_spec_error, build, golden_path, plan

from generator.pipeline import generate, plan_for

# timm's table for its Xception (the same network at 299x299): 8.4 GMACs, 22.9M params.
PUBLISHED_GMACS = 8.4


def test_multiply_adds_are_the_published_ones():
    assert abs(plan("xception").total_macs / 1e9 - PUBLISHED_GMACS) < 0.05


@pytest.mark.parametrize("style", STYLES)
def test_the_module_table_is_data_in_the_file(style):
    text = golden_path("xception", style).read_text(encoding="utf-8")
    assert '{"n_filters": [728, 728, 728], "n_blocks": 8, "strides": 1}' in text
    assert '"tail_filters": [1536, 2048],' in text
    assert "def auto_name(counter, base):" in text


@pytest.mark.parametrize("style", STYLES)
def test_unnamed_layers_take_keras_automatic_names(style):
    """keras.applications leaves the four shortcut projections (blocks 2, 3, 4, 13) and
    their BNs unnamed: conv2d ... conv2d_3 in build order, as its weights file names them.
    The adds hold no weights: block2_add ... block13_add. Block 2, the first module, has
    no ReLU before its first separable convolution."""
    model = build("xception", style, input_shape=(96, 96, 3), include_top=False)
    names = [layer.name for layer in model.layers]
    assert [n for n in names if n.startswith("conv2d")] == [
        "conv2d", "conv2d_1", "conv2d_2", "conv2d_3",
    ]  # fmt: skip
    assert [n for n in names if n.endswith("_add")] == [f"block{i}_add" for i in range(2, 14)]
    assert "block2_sepconv1_act" not in names and "block2_sepconv2_act" in names
    assert "block3_sepconv1_act" in names
    shortcut = model.get_layer("conv2d_3")  # block13's: 728 -> 1024 at stride 2
    assert shortcut.strides == (2, 2) and shortcut.filters == 1024
    assert {n for n in names if n.endswith("_pool")} == {f"block{i}_pool" for i in (2, 3, 4, 13)}


@pytest.mark.parametrize("style", STYLES)
def test_the_tail_stays_without_the_top(style):
    model = build("xception", style, input_shape=(299, 299, 3), include_top=False)
    assert model.layers[-1].name == "block14_sepconv2_act"
    assert tuple(model.output.shape) == (None, 10, 10, 2048)


def test_a_module_projects_where_the_stride_or_the_width_changes():
    """A stride-1 group whose width changes projects its first module's input (1x1/1, one
    conv and BN more); the middle flow's later modules add their input as it is."""
    narrower = ["learner.groups.3.n_filters=[728, 728, 512]"]
    model = build("xception", "procedural", module=_module(narrower, "procedural"),
                  input_shape=(71, 71, 3), include_top=False)  # fmt: skip
    names = [layer.name for layer in model.layers]
    assert [n for n in names if n.startswith("conv2d")] == [
        "conv2d", "conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4",
    ]  # fmt: skip
    middle = model.get_layer("conv2d_3")  # block5's: 728 -> 512 at stride 1
    assert middle.strides == (1, 1) and middle.filters == 512
    assert _source(model, "block5_add", 1) == "batch_normalization_3"
    assert _source(model, "block6_add", 1) == "block5_add"  # identity
    assert (
        model.count_params() == plan_for("xception", narrower).total_params - 2049 * 1000
    )  # no top


def test_the_learner_counts_on_from_a_stem_with_automatic_names():
    """Inception v3's stem takes conv2d ... conv2d_4 (StemKind.auto_names): the modules'
    projections go on from conv2d_5, and the network builds with no name twice."""
    sized = ["stem={kind: inception_v3}", "input_shape=[139, 139, 3]"]
    model = build("xception", "oop", module=_module(sized, "oop"), include_top=False)
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert [n for n in names if n.startswith("conv2d")][5:] == [f"conv2d_{i}" for i in range(5, 9)]
    assert model.count_params() == plan_for("xception", sized).total_params - 2049 * 1000


def _source(model, layer: str, index: int) -> str:
    """The layer that makes the index-th input of that layer."""
    return model.get_layer(layer).input[index]._keras_history.operation.name


def _module(overrides, style):
    """The xception file in that style with those --set overrides, imported."""
    module = types.ModuleType("xception_changed")
    source = generate("xception", style, overrides)
    exec(compile(source, "xception_changed.py", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize(
    "sets, field, reason",
    [
        (["learner.groups.0.n_filters=[]"], "learner.groups[0].n_filters", "at least 1 item"),
        (["learner.tail_filters=[]"], "learner.tail_filters", "at least 1 item"),
        (["learner.groups.1.strides=0"], "learner.groups[1].strides", "must be >= 1, got 0"),
        (["learner.groups.3.n_blocks=0"], "learner.groups[3].n_blocks", "must be >= 1, got 0"),
    ],
)
def test_bad_metaparameters_are_one_line_spec_errors(sets, field, reason, capsys):
    assert_one_spec_error("xception", sets, field, reason, capsys)
