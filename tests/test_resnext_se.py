"""ResNeXt and SE: two options of the residual blocks, and the presets built from them.

The generic checks (reference counts for resnext50_32x4d, resnext101_32x8d, se_resnet50 and
se_resnext50_32x4d, styles, training, files) run in test_models.py. Here: the grouped 3x3
(native `groups=` and the split-transform-merge form give the same outputs with the same
weights, the slices bound per branch), the SE link (in every block, on the residual branch
before the add, the projection block first in each group: the slides' `blocks.pop()` bug),
what se_block computes, SE on basic blocks, and the spec and plan rules of both options.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import re

import keras
import numpy as np
import pytest
import yaml
from conftest import STYLES, full_size, golden_module, plan
from emitted import assert_inert

from generator.errors import SpecError
from generator.pieces.blocks.residual import width_expression
from generator.pipeline import generate, plan_for
from generator.spec import load_raw, spec_to_yaml, validate

SMALL = (64, 64, 3)  # 2x2 final maps
both_styles = pytest.mark.parametrize("style", STYLES)
RESNEXTS = {  # preset: (cardinality, width_per_group, se_ratio)
    "resnext50_32x4d": (32, 4, None),
    "resnext101_32x8d": (32, 8, None),
    "se_resnext50_32x4d": (32, 4, 16),
}
SE_PRESETS = ["se_resnet50", "se_resnext50_32x4d"]
# Names only the split-transform-merge form writes (no preset uses it, so no golden file).
SPLIT_NAMES = frozenset({"group_slice", "branches", "branch"})
_module_ids = itertools.count()


def random_batch(shape, batch=2, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, *shape), dtype=np.float32)


def load_source(text: str, tmp_path, stem: str):
    """Write an emitted file and import it as a fresh module."""
    path = tmp_path / f"{stem}_{next(_module_ids)}.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_generated(module, style: str, class_name: str, **kwargs):
    if style == "procedural":
        return module.build_model(**kwargs)
    metaparameters = kwargs.pop("metaparameters", None) or {}
    return getattr(module, class_name)(**kwargs, **metaparameters).model


def n_trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def block_names(preset: str) -> list[tuple[int, int, str]]:
    """(group, block, layer-name prefix) of every block of a conv2..conv5 preset."""
    groups = plan(preset).spec.learner.groups
    return [
        (g, b, f"conv{g}_block{b}")
        for g, group in enumerate(groups, start=2)
        for b in range(1, group.n_blocks + 1)
    ]


# --------------------------------------------------------------------------- ResNeXt


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(RESNEXTS))
def test_full_size_resnext_presets_group_the_3x3(preset):
    """Every block of every group: the preset's shared full-size model (conftest.full_size)."""
    cardinality, per_group, se_ratio = RESNEXTS[preset]
    spec = plan(preset).spec
    assert spec.learner.block == "bottleneck" and spec.learner.stride_on == "3x3"
    assert (spec.learner.cardinality, spec.learner.width_per_group) == (cardinality, per_group)
    assert spec.learner.grouped_conv == "native" and spec.learner.se_ratio == se_ratio
    assert spec.conventions.bn_epsilon == 1e-5 and not spec.conventions.bias_before_bn

    model = full_size(preset, "procedural").model
    n_filters = {g: group.n_filters for g, group in enumerate(spec.learner.groups, start=2)}
    for g, b, prefix in block_names(preset):
        width = n_filters[g] * per_group // 64 * cardinality  # torchvision's arithmetic
        reduce, grouped = model.get_layer(f"{prefix}_1_conv"), model.get_layer(f"{prefix}_2_conv")
        expand = model.get_layer(f"{prefix}_3_conv")
        assert reduce.filters == width and tuple(reduce.kernel_size) == (1, 1)
        assert grouped.filters == width and grouped.groups == cardinality
        assert tuple(grouped.kernel_size) == (3, 3)
        assert tuple(grouped.kernel.shape) == (3, 3, width // cardinality, width)
        assert expand.filters == 4 * n_filters[g]  # the output stays 4 * n_filters
        stride = 2 if b == 1 and g > 2 else 1  # v1.5: the stride sits on the 3x3
        assert tuple(grouped.strides) == (stride, stride), prefix
        assert tuple(reduce.strides) == (1, 1), prefix
        assert not any(w.name == "bias" for w in (*reduce.weights, *grouped.weights))


def test_width_expression_is_torchvisions_arithmetic():
    assert width_expression(4, 32) == "n_filters // 16 * 32"
    assert width_expression(8, 32) == "n_filters // 8 * 32"
    assert width_expression(64, 1) == "n_filters"
    assert width_expression(128, 1) == "n_filters * 2"
    for per_group, cardinality in itertools.product([1, 3, 4, 8, 24, 48, 64, 100, 128], [1, 2, 32]):
        expression = width_expression(per_group, cardinality)
        for n_filters in [1, 7, 16, 63, 64, 100, 128, 512, 2048]:
            want = int(n_filters * (per_group / 64.0)) * cardinality  # torchvision's line
            assert eval(expression, {"n_filters": n_filters}) == want, (expression, n_filters)


def _randomize(model, seed=0):
    """Random weights everywhere; BN variances positive (a meaningful comparison)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        fresh = [rng.normal(0.0, 0.2, w.shape).astype("float32") for w in weights]
        if isinstance(layer, keras.layers.BatchNormalization):
            fresh[-1] = rng.uniform(0.5, 1.5, weights[-1].shape).astype("float32")
        layer.set_weights(fresh)


@both_styles
@pytest.mark.parametrize(
    "stride_on, bias", [("3x3", False), ("1x1", True)], ids=["v1.5-no-bias", "v1-bias"]
)
def test_split_transform_merge_equals_the_grouped_conv(style, stride_on, bias, tmp_path):
    """The slides' split-transform-merge, written correctly, is the grouped convolution:
    with the grouped kernel cut along its output axis into the branches, the outputs agree.
    A late-binding slice (every branch reading the last group's channels) would not."""
    overrides = [f"learner.stride_on={stride_on}", f"conventions.bias_before_bn={bias}"]
    native_text = generate("resnext50_32x4d", style, overrides)
    split_text = generate("resnext50_32x4d", style, [*overrides, "learner.grouped_conv=split"])
    assert ", groups=32, " in native_text and ", groups=32, " not in split_text
    assert "layers.Lambda(" in split_text  # ... of a def, with its bounds as arguments:
    assert not any(isinstance(node, ast.Lambda) for node in ast.walk(ast.parse(split_text)))

    class_name = "ResNeXt50_32x4d"
    small = {"groups": [{"n_filters": 64, "n_blocks": 2, "strides": 1}]}
    small["groups"].append({"n_filters": 128, "n_blocks": 2, "strides": 2})
    kwargs = dict(input_shape=(16, 16, 3), n_classes=10, classifier_activation=None)
    native_module = load_source(native_text, tmp_path, "native")
    split_module = load_source(split_text, tmp_path, "split")
    native = build_generated(native_module, style, class_name, metaparameters=small, **kwargs)
    split = build_generated(split_module, style, class_name, metaparameters=small, **kwargs)
    assert native.count_params() == split.count_params()
    assert n_trainable(native) == n_trainable(split)

    _randomize(native)
    split_layers = {layer.name: layer for layer in split.layers if layer.weights}
    assigned = set()
    for layer in native.layers:
        if not layer.weights:
            continue
        if getattr(layer, "groups", 1) > 1:
            weights = layer.get_weights()  # kernel (3, 3, width / 32, width) [, bias]
            per_group = weights[0].shape[-1] // layer.groups
            for index in range(layer.groups):
                part = slice(index * per_group, (index + 1) * per_group)
                branch = split_layers[f"{layer.name}{index}"]
                branch.set_weights([w[..., part] for w in weights])
                assigned.add(branch.name)
        else:
            split_layers[layer.name].set_weights(layer.get_weights())
            assigned.add(layer.name)
    assert assigned == set(split_layers), set(split_layers) ^ assigned

    # Each branch reads its own slice, fixed when the layer was made.
    slices = [layer for layer in split.layers if isinstance(layer, keras.layers.Lambda)]
    first_block = [layer for layer in slices if layer.name.startswith("conv2_block1_")]
    assert [layer.arguments["index"] for layer in first_block] == list(range(32))
    assert {layer.arguments["n_filters"] for layer in first_block} == {4}

    x = random_batch((16, 16, 3), seed=5)
    expected = native(x, training=False).numpy()
    got = split(x, training=False).numpy()
    assert np.all(np.isfinite(expected)) and np.std(expected) > 1e-3
    diff = float(np.max(np.abs(got - expected)))
    assert diff < 1e-5, f"split vs native max abs diff {diff:.3g}"


@both_styles
def test_split_file_is_inert_and_reserves_its_names(style):
    text = generate("resnext50_32x4d", style, ["learner.grouped_conv=split"])
    for name in SPLIT_NAMES:  # read from the output: a class may not shadow them either
        with pytest.raises(SpecError, match=f"'{name}' is reserved"):
            generate("resnext50_32x4d", style, ["learner.grouped_conv=split", f"class_name={name}"])
    raw = validate(load_raw("resnext50_32x4d")[0], "resnext50_32x4d").model_dump()
    tree = assert_inert(text, raw, style, extra_names=SPLIT_NAMES)
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    # (the OOP file reaches group_slice as an attribute of the class)
    assert SPLIT_NAMES - ({"group_slice"} if style == "oop" else set()) <= names


def test_split_with_cardinality_one_is_a_plain_3x3():
    """No groups, nothing to split: the file is the plain bottleneck's."""
    plain = generate("resnet50_v1_5", "procedural")
    split = generate("resnet50_v1_5", "procedural", ["learner.grouped_conv=split"])
    body = plain.split("METAPARAMETERS", 1)[1]
    assert split.split("METAPARAMETERS", 1)[1] == body


# --------------------------------------------------------------------------- SE


@pytest.mark.slow
@pytest.mark.parametrize("preset", SE_PRESETS)
@both_styles
def test_full_size_every_block_has_its_se_link_before_the_add(preset, style):
    """Every block of every group: the preset's shared full-size model (conftest.full_size)."""
    spec = plan(preset).spec
    assert spec.learner.se_ratio == 16
    model = full_size(preset, style).model
    n_filters = {g: group.n_filters for g, group in enumerate(spec.learner.groups, start=2)}
    for g, _, prefix in block_names(preset):
        channels = 4 * n_filters[g]
        squeeze = model.get_layer(f"{prefix}_se_squeeze")
        reduce, expand = (
            model.get_layer(f"{prefix}_se_reduce"),
            model.get_layer(f"{prefix}_se_expand"),
        )
        excite = model.get_layer(f"{prefix}_se_excite")
        assert isinstance(squeeze, keras.layers.GlobalAveragePooling2D) and squeeze.keepdims
        assert reduce.filters == channels // 16 and reduce.use_bias
        assert reduce.get_config()["activation"] == "relu"
        assert expand.filters == channels and expand.use_bias
        assert expand.get_config()["activation"] == "sigmoid"
        assert isinstance(excite, keras.layers.Multiply)
        # On the residual branch: it rescales the last BN's maps, and its product (not the
        # shortcut, not the sum) is what the add receives.
        bn3 = model.get_layer(f"{prefix}_3_bn").output
        assert any(t is bn3 for t in excite.input)
        assert any(t is expand.output for t in excite.input)
        assert any(t is excite.output for t in model.get_layer(f"{prefix}_add").input)
        assert squeeze.input is bn3
    n_blocks = sum(group.n_blocks for group in spec.learner.groups)
    excites = [layer for layer in model.layers if layer.name.endswith("_se_excite")]
    assert len(excites) == n_blocks


@pytest.mark.slow
@pytest.mark.parametrize("preset", SE_PRESETS)
@both_styles
def test_full_size_each_se_group_starts_with_its_projection_block(preset, style):
    """KNOWN_BUGS: the slides' SENet group takes `blocks.pop()` (the LAST block) as the
    projection block. Here block1 of every group projects (the strided 1x1 _0_conv), is
    built before block2, and no later block projects. The shared full-size model."""
    spec = plan(preset).spec
    model = full_size(preset, style).model
    order = {layer.name: position for position, layer in enumerate(model.layers)}
    for g, group in enumerate(spec.learner.groups, start=2):
        projection = model.get_layer(f"conv{g}_block1_0_conv")
        stride = group.strides
        assert tuple(projection.strides) == (stride, stride)
        assert projection.filters == 4 * group.n_filters
        later = [n for n in order if re.match(rf"conv{g}_block([2-9]|\d\d+)_", n)]
        assert later and all(order[n] > order[f"conv{g}_block1_se_excite"] for n in later)
        assert not [n for n in later if n.endswith("_0_conv")], "a later block projects"
        block1_out = model.get_layer(f"conv{g}_block1_out").output
        assert block1_out.shape[-1] == 4 * group.n_filters
        if g > 2:
            previous = model.get_layer(
                f"conv{g - 1}_block{spec.learner.groups[g - 3].n_blocks}_out"
            )
            assert block1_out.shape[1] == previous.output.shape[1] // stride


@both_styles
def test_se_block_computes_what_its_docstring_says(style):
    module = golden_module("se_resnet50", style)
    se_block = module.se_block if style == "procedural" else module.SEResNet50.se_block
    inputs = keras.Input((5, 4, 32))
    model = keras.Model(inputs, se_block(inputs, 4, name="probe"))
    assert model.output.shape == (None, 5, 4, 32)
    rng = np.random.default_rng(1)
    reduce, expand = model.get_layer("probe_reduce"), model.get_layer("probe_expand")
    w1, b1 = rng.normal(size=(1, 1, 32, 8)), rng.normal(size=8)
    w2, b2 = rng.normal(size=(1, 1, 8, 32)), rng.normal(size=32)
    reduce.set_weights([w1.astype("float32"), b1.astype("float32")])
    expand.set_weights([w2.astype("float32"), b2.astype("float32")])

    x = random_batch((5, 4, 32), seed=2)
    squeezed = x.mean(axis=(1, 2))  # (batch, C)
    hidden = np.maximum(squeezed @ w1[0, 0] + b1, 0.0)
    gate = 1.0 / (1.0 + np.exp(-(hidden @ w2[0, 0] + b2)))
    expected = x * gate[:, None, None, :]
    got = model(x).numpy()
    assert float(np.max(np.abs(got - expected))) < 1e-5


@both_styles
def test_se_composes_with_basic_blocks(style, tmp_path):
    text = generate("resnet18", style, ["learner.se_ratio=16"])
    assert "def se_block(" in text
    module = load_source(text, tmp_path, "se_resnet18")
    model = build_generated(module, style, "ResNet18", input_shape=SMALL)
    planned = plan_for("resnet18", ["learner.se_ratio=16", "input_shape=[64, 64, 3]"])
    assert model.count_params() == planned.total_params
    assert n_trainable(model) == planned.trainable_params
    for g, _, prefix in block_names("resnet18"):
        excite = model.get_layer(f"{prefix}_se_excite")
        assert any(t is excite.output for t in model.get_layer(f"{prefix}_add").input)
        assert model.get_layer(f"{prefix}_se_reduce").filters == 64 * 2 ** (g - 2) // 16


def test_se_and_grouped_conv_cost_what_the_plan_says():
    """The options' parameters, counted by hand: SE adds 2 * C * C / 16 + C / 16 + C per
    block; ResNeXt changes only the 1x1 reduce and the 3x3."""
    base = plan_for("resnet50_v1_5").trainable_params
    se = 0
    for group in plan("se_resnet50").spec.learner.groups:
        channels = 4 * group.n_filters
        se += group.n_blocks * (2 * channels * (channels // 16) + channels // 16 + channels)
    assert plan("se_resnet50").trainable_params == base + se == 28_088_024
    resnext = plan("resnext50_32x4d").trainable_params
    assert plan("se_resnext50_32x4d").trainable_params == resnext + se == 27_559_896


def test_no_se_no_se_block():
    for preset in ("resnet50", "resnet18", "resnext50_32x4d"):
        assert "se_block" not in generate(preset, "procedural")
    assert generate("se_resnet50", "oop").count("def se_block(") == 1  # written once


# --------------------------------------------------------------------------- spec and plan


def _error(target: str, overrides: list[str]) -> SpecError:
    with pytest.raises(SpecError) as info:
        plan_for(target, overrides)
    return info.value


@pytest.mark.parametrize(
    "target, overrides, path, needle",
    [
        (
            "resnext50_32x4d",
            ["learner.groups.0.n_filters=8"],
            "learner.groups[0].n_filters",
            "0 channels",
        ),
        ("resnext50_32x4d", ["learner.width_per_group=0"], "learner.width_per_group", ">= 1"),
        ("resnext50_32x4d", ["learner.cardinality=0"], "learner.cardinality", ">= 1"),
        ("resnext50_32x4d", ["learner.grouped_conv=lambda"], "learner.grouped_conv", "native"),
        ("resnet18", ["learner.cardinality=32"], "learner", "cardinality"),
        ("resnet18", ["learner.width_per_group=4"], "learner", "width_per_group"),
        ("resnet50_v2", ["learner.grouped_conv=split"], "learner", "grouped_conv"),
        ("resnet50_v2", ["learner.se_ratio=16"], "learner", "se_ratio"),
        ("resnet18", ["learner.se_ratio=128"], "learner.se_ratio", "0 channels"),
        ("resnet18", ["learner.se_ratio=0"], "learner.se_ratio", ">= 1"),
    ],
    ids=[
        "width-rounds-to-zero",
        "zero-width-per-group",
        "zero-cardinality",
        "bad-grouped-conv",
        "cardinality-on-basic",
        "width-on-basic",
        "split-on-preact",
        "se-on-preact",
        "se-squeezes-to-nothing",
        "zero-se-ratio",
    ],
)
def test_bad_options_name_the_field(target, overrides, path, needle):
    error = _error(target, overrides)
    assert error.path == path, (error.path, error.reason)
    assert needle in error.reason, error.reason


def test_resnext_options_default_on_bottlenecks_only():
    shown = yaml.safe_load(spec_to_yaml(validate(load_raw("resnet50")[0], "resnet50")))
    learner = shown["learner"]
    assert (learner["cardinality"], learner["width_per_group"]) == (1, 64)
    assert learner["grouped_conv"] == "native" and "se_ratio" not in learner
    for preset in ("resnet18", "resnet50_v2"):
        learner = yaml.safe_load(spec_to_yaml(validate(load_raw(preset)[0], preset)))["learner"]
        assert not {"cardinality", "width_per_group", "grouped_conv", "se_ratio"} & set(learner)
    # A spec may write null for a bottleneck option: it means the default.
    raw = load_raw("resnext50_32x4d")[0]
    raw["learner"] = {**raw["learner"], "cardinality": None, "grouped_conv": None}
    learner = validate(raw, "x").learner
    assert (learner.cardinality, learner.grouped_conv) == (1, "native")
