"""DenseNet121/169/201: the dense block type, its transitions and the final BN-ReLU.

The generic checks (reference counts, weighted layers by name, styles, training, files) run
for these presets in test_models.py. Here: every layer of keras.applications' DenseNet in
order, the outputs with its weights, the final BN-ReLU that the public zoo dropped, the
transition arithmetic, and the spec rules of the `dense` learner.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import yaml
from conftest import (
    MAX_DEPTH,
    STYLES,
    build,
    full_size,
    golden_module,
    keras_application,
    logits,
    model_class,
    plan,
    reduced_keras_reference,
    reduced_metaparameters,
)

from generator.cli import main
from generator.errors import SpecError
from generator.pipeline import generate, plan_for
from generator.spec import load_raw, validate

DENSENETS = {
    "densenet121": ("DenseNet121", [6, 12, 24, 16], 8_062_504),
    "densenet169": ("DenseNet169", [6, 12, 32, 32], 14_307_880),
    "densenet201": ("DenseNet201", [6, 12, 48, 32], 20_242_984),
}
SMALL = (64, 64, 3)  # stem / 4, three transitions / 8: 2x2 final maps
both_styles = pytest.mark.parametrize("style", STYLES)


def random_batch(shape, batch=2, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, *shape), dtype=np.float32)


def layer_sequence(model) -> list[tuple[str | None, str]]:
    """(name, type) of every layer in order; Keras' automatic names (the input layer and
    keras.applications' unnamed ZeroPadding2D layers) read as None."""
    out = []
    for layer in model.layers:
        automatic = isinstance(layer, keras.layers.InputLayer | keras.layers.ZeroPadding2D)
        out.append((None if automatic else layer.name, type(layer).__name__))
    return out


def comparable_config(layer) -> dict:
    config = dict(layer.get_config())
    config.pop("name", None)
    if isinstance(layer, keras.layers.BatchNormalization | keras.layers.Concatenate):
        axis = config["axis"]
        rank = len(layer.output.shape)
        config["axis"] = [a % rank for a in (axis if isinstance(axis, list | tuple) else [axis])]
    return config


# --------------------------------------------------------------------------- the presets


def test_presets_and_sizes():
    for preset, (_, n_blocks, total) in DENSENETS.items():
        spec = plan(preset).spec
        assert spec.learner.block == "dense"
        assert spec.stem.kind == "densenet" and spec.stem.n_filters == 64
        assert [group.n_blocks for group in spec.learner.groups] == n_blocks
        assert spec.learner.growth_rate == 32 and spec.learner.compression == 0.5
        assert spec.conventions.bn_epsilon == 1.001e-5 and not spec.conventions.bias_before_bn
        assert plan(preset).total_params == total
        # Sizes are data: the emitted METAPARAMETERS carry them, in both styles.
        for style in STYLES:
            module = golden_module(preset, style)
            params = (
                module.METAPARAMETERS
                if style == "procedural"
                else model_class(module, preset).metaparameters
            )
            assert params == {
                "groups": [{"n_blocks": n} for n in n_blocks],
                "growth_rate": 32,
                "compression": 0.5,
            }


def test_plan_stages_for_densenet121():
    stages = [(s.name, s.kind, s.output_shape) for s in plan("densenet121").stages]
    assert stages == [
        ("stem", "stem", (56, 56, 64)),
        ("conv2", "group", (56, 56, 64 + 6 * 32)),  # 256
        ("pool2", "transition", (28, 28, 128)),
        ("conv3", "group", (28, 28, 128 + 12 * 32)),  # 512
        ("pool3", "transition", (14, 14, 256)),
        ("conv4", "group", (14, 14, 256 + 24 * 32)),  # 1024
        ("pool4", "transition", (7, 7, 512)),
        ("conv5", "group", (7, 7, 512 + 16 * 32)),  # 1024
        ("post", "norm", (7, 7, 1024)),
        ("classifier", "classifier", (1000,)),
    ]
    post = plan("densenet121").stages[-2]
    assert post.params == 4 * 1024 and post.trainable == 2 * 1024  # keras' bn


# --------------------------------------------------------------------------- keras.applications


def assert_same_layers(reference, ours, what: str) -> None:
    """Every layer of the reference, in order, with the same config; its weights copied
    into ours by name."""
    assert layer_sequence(ours) == layer_sequence(reference), what
    ref_layers = {layer.name: layer for layer in reference.layers}
    for layer in ours.layers:
        if layer.name in ref_layers:
            assert comparable_config(layer) == comparable_config(ref_layers[layer.name]), layer.name
    for layer in ours.layers:
        if layer.weights:
            layer.set_weights(ref_layers[layer.name].get_weights())
    assert ours.count_params() == reference.count_params(), what


def assert_same_logits(expected, got, what: str) -> None:
    expected, got = np.asarray(expected), np.asarray(got)
    assert got.shape == expected.shape and got.shape[0] == 2
    assert np.all(np.isfinite(expected)) and np.std(expected) > 0
    diff = float(np.max(np.abs(got - expected)))
    assert diff < 1e-5, f"{what}: max abs diff {diff:.3g}"


# The smallest DenseNet at full size; its deep siblings at reduced depth (conftest.shallow:
# two dense blocks per group) against keras' own DenseNet builder at that depth.
@pytest.mark.slow
@pytest.mark.parametrize("preset", ["densenet121"])
@both_styles
def test_full_size_same_network_as_keras_applications(preset, style):
    """Every layer of keras.applications' DenseNet121, in order, with the same config; its
    weights copied by name give the same logits (at 224x224: the shared full-size model)."""
    reference = keras_application(preset)
    ours = full_size(preset, style).model
    assert_same_layers(reference, ours, f"{preset} ({style})")
    x = random_batch(plan(preset).spec.input_shape, seed=5)
    expected, got = logits(reference, x), logits(ours, x)
    assert_same_logits(expected, got, f"{preset} ({style}) vs {DENSENETS[preset][0]}")


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["densenet169", "densenet201"])
@both_styles
def test_same_network_as_keras_applications_at_reduced_depth(preset, style):
    """The deep siblings at reduced depth and 64x64: every layer of keras' DenseNet
    builder at that depth (blocks=[2, 2, 2, 2]), in order, with the same config, and with
    its weights the same logits. Their full-depth sizes are the reference counts'
    (test_models), their code the one densenet121 is held to above."""
    meta = reduced_metaparameters(preset, style)
    assert [group["n_blocks"] for group in meta["groups"]] == [MAX_DEPTH] * 4
    kwargs = dict(input_shape=SMALL, classifier_activation=None)  # compare logits
    reference = reduced_keras_reference(preset, **kwargs)
    ours = build(preset, style, metaparameters=meta, **kwargs)
    assert_same_layers(reference, ours, f"{preset} ({style}, reduced)")
    x = random_batch(SMALL, seed=5)
    expected, got = reference(x, training=False), ours(x, training=False)
    assert_same_logits(expected, got, f"{preset} ({style}) vs keras' DenseNet at reduced depth")


# --------------------------------------------------------------------------- final BN-ReLU


@both_styles
def test_the_final_bn_relu_is_there(style):
    """keras.applications (and the paper) normalise the last concatenation before pooling;
    the public zoo dropped it. Structure, parameters and values all show it."""
    model = build("densenet121", style, input_shape=SMALL, n_classes=10)
    names = [layer.name for layer in model.layers]
    assert names[-4:] == ["bn", "relu", "avg_pool", "predictions"]
    bn, relu = model.get_layer("bn"), model.get_layer("relu")
    assert isinstance(bn, keras.layers.BatchNormalization)
    assert bn.epsilon == pytest.approx(1.001e-5)
    assert isinstance(relu, keras.layers.Activation) and relu.get_config()["activation"] == "relu"
    # wired concat -> bn -> relu -> avg_pool
    assert bn.input is model.get_layer("conv5_block16_concat").output
    assert relu.input is bn.output
    assert model.get_layer("avg_pool").input is relu.output
    assert bn.count_params() == 4 * 1024

    # The feature maps are ReLU'd (no negative values), and the BN acts on them: with a
    # shifted beta every feature moves, which it could not without the layer.
    features = build("densenet121", style, input_shape=SMALL, include_top=False)
    assert features.layers[-1].name == "relu"
    x = random_batch(SMALL, seed=6)
    maps = np.asarray(features(x, training=False))
    assert maps.shape == (2, 2, 2, 1024)
    assert maps.min() >= 0.0 and maps.max() > 0.0
    gamma, beta, mean, variance = features.get_layer("bn").get_weights()
    features.get_layer("bn").set_weights([gamma, beta + 100.0, mean, variance])
    shifted = np.asarray(features(x, training=False))
    assert np.all(shifted > maps), "the last BN does not reach the output"


def test_the_plan_counts_the_final_bn():
    """Without the final BN (4 * 1024 parameters) the count could not match Keras'."""
    total = plan("densenet121").total_params
    without = sum(s.params for s in plan("densenet121").stages if s.name != "post")
    assert total == 8_062_504 and without == total - 4 * 1024


# --------------------------------------------------------------------------- transitions


@both_styles
def test_transitions_halve_channels_and_h_w(style):
    model = build("densenet121", style, input_shape=(128, 128, 3), include_top=False)
    for index in (2, 3, 4):
        before = tuple(model.get_layer(f"conv{index}_block1_0_bn").input.shape[1:])
        last = model.get_layer(f"pool{index}_bn").input
        h, w, c = tuple(last.shape[1:])
        assert last is model.get_layer(f"conv{index}_block{[6, 12, 24][index - 2]}_concat").output
        assert tuple(model.get_layer(f"pool{index}_conv").output.shape[1:]) == (h, w, c // 2)
        out = model.get_layer(f"pool{index}_pool")
        assert isinstance(out, keras.layers.AveragePooling2D)
        assert tuple(out.pool_size) == (2, 2) and tuple(out.strides) == (2, 2)
        assert tuple(out.output.shape[1:]) == (h // 2, w // 2, c // 2)
        # the next group starts from the transition's output
        assert model.get_layer(f"conv{index + 1}_block1_0_bn").input is out.output
        assert before[2] + {2: 6, 3: 12, 4: 24}[index] * 32 == c
    assert "pool5_bn" not in {layer.name for layer in model.layers}  # none after the last


@both_styles
def test_compression_and_growth_rate_are_metaparameters(style):
    """Sizes are data: another growth rate and compression without regenerating, with
    the plan of the same spec agreeing with Keras' count."""
    override = {"growth_rate": 12, "compression": 0.3}
    kwargs = dict(input_shape=SMALL, n_classes=10)
    model = build("densenet121", style, metaparameters=override, **kwargs)
    # conv2 ends with 64 + 6 * 12 = 136 maps; int(136 * 0.3) = 40 (Keras' own arithmetic)
    assert model.get_layer("conv2_block6_concat").output.shape[-1] == 136
    assert model.get_layer("pool2_conv").output.shape[-1] == 40
    assert model.get_layer("conv2_block1_1_conv").filters == 48
    assert model.get_layer("conv2_block1_2_conv").filters == 12
    expected = plan_for(
        "densenet121",
        ["input_shape=[64, 64, 3]", "n_classes=10", "learner.growth_rate=12"]
        + ["learner.compression=0.3"],
    )
    assert model.count_params() == expected.total_params


def test_blocks_tear_off():
    cls = golden_module("densenet121", "oop").DenseNet121
    out = cls.dense_block(keras.Input((8, 8, 64)), 32, name="d")
    assert tuple(out.shape) == (None, 8, 8, 96)
    out = cls.transition_block(keras.Input((8, 8, 256)), 0.5, name="t")
    assert tuple(out.shape) == (None, 4, 4, 128)
    out = cls.group(keras.Input((8, 8, 64)), 6, 32, name="g")
    assert tuple(out.shape) == (None, 8, 8, 256)


# --------------------------------------------------------------------------- spec rules


def densenet_raw() -> dict:
    return load_raw("densenet121")[0]


@pytest.mark.parametrize(
    "field, value, reason",
    [
        ("compression", 0.0, "must be > 0.0, got 0.0"),
        ("compression", -0.5, "must be > 0.0"),
        ("compression", 1.5, "must be <= 1.0, got 1.5"),
        ("compression", "half", "valid number"),
        ("compression", True, "valid number"),
        ("growth_rate", 0, "must be >= 1, got 0"),
        ("growth_rate", 2.5, "valid integer"),
        ("growth_rate", True, "valid integer"),
    ],
)
def test_bad_learner_sizes_are_refused(field, value, reason):
    raw = densenet_raw()
    raw["learner"][field] = value
    with pytest.raises(SpecError) as info:
        validate(raw, "d.yaml")
    assert info.value.path == f"learner.{field}"
    assert reason in info.value.reason


def test_edge_sizes_are_fine():
    for compression in (1.0, 1, 0.01):
        raw = densenet_raw()
        raw["learner"]["compression"] = compression
        assert validate(raw, "d.yaml").learner.compression == compression
    raw = densenet_raw()
    raw["learner"]["growth_rate"] = 1
    assert validate(raw, "d.yaml").learner.growth_rate == 1


def test_dense_groups_take_only_n_blocks(capsys):
    raw = densenet_raw()
    raw["learner"]["groups"][1]["n_filters"] = 64
    with pytest.raises(SpecError) as info:
        validate(raw, "d.yaml")
    assert info.value.path == "learner.groups[1].n_filters"
    assert info.value.reason.startswith("unknown field")
    raw = densenet_raw()
    raw["learner"]["growth"] = 12
    with pytest.raises(SpecError) as info:
        validate(raw, "d.yaml")
    assert "did you mean 'growth_rate'" in info.value.reason


def test_a_transition_that_compresses_to_nothing_is_one_error_line(capsys):
    capsys.readouterr()
    argv = ["generate", "densenet121", "--set", "learner.compression=0.001"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "error: densenet121: learner.compression: the transition after learner.groups[0] "
        "would compress 256 channels to int(256 * 0.001) = 0; raise compression"
    ]


def test_a_transition_on_a_1x1_map_is_refused():
    with pytest.raises(SpecError) as info:
        plan_for("densenet121", ["input_shape=[16, 16, 3]"])
    # 16 -> stem 4 -> pool2 2 -> pool3 1 -> pool4 needs 2x2
    assert info.value.path == "learner.groups[2]"
    assert "average pool" in info.value.reason and "1x1" in info.value.reason


def test_one_group_has_no_transition():
    one = plan_for("densenet121", ["learner.groups=[{n_blocks: 2}]"])
    assert [s.name for s in one.stages] == ["stem", "conv2", "post", "classifier"]
    assert one.stages[1].output_shape == (56, 56, 128)


# --------------------------------------------------------------------------- other specs

CUSTOM = {
    "tiny-biased-flatten": dict(
        input_shape=[40, 40, 1],
        conventions={"bias_before_bn": True, "bn_epsilon": 1e-3},
        stem={"kind": "densenet", "n_filters": 8},
        learner={
            "block": "dense",
            "growth_rate": 4,
            "compression": 0.7,
            "groups": [{"n_blocks": 1}, {"n_blocks": 2}, {"n_blocks": 3}],
        },
        classifier={"kind": "flatten", "dense_units": [16], "dropout": 0.5},
    ),
    "no-stem-no-compression": dict(
        input_shape=[7, 7, 2],
        learner={
            "block": "dense",
            "growth_rate": 1,
            "compression": 1.0,
            "groups": [{"n_blocks": 2}, {"n_blocks": 1}],
        },
        classifier={"kind": "avg_pool"},
    ),
    "five-groups": dict(
        input_shape=[97, 97, 3],
        stem={"kind": "densenet", "n_filters": 16},
        learner={
            "block": "dense",
            "growth_rate": 5,
            "compression": 0.33,
            "groups": [{"n_blocks": n} for n in (3, 1, 2, 2, 1)],
        },
        classifier={"kind": "avg_pool"},
    ),
}


@pytest.mark.parametrize("case", sorted(CUSTOM))
@both_styles
def test_plan_count_equals_keras_for_other_dense_specs(case, style, tmp_path):
    """Not only the presets: odd sizes, biases before BN, a flatten head, no stem."""
    path = tmp_path / f"{case.replace('-', '_')}.yaml"
    path.write_text(yaml.safe_dump({"name": "custom_dense", "n_classes": 7, **CUSTOM[case]}))
    expected = plan_for(str(path))
    namespace: dict = {"__name__": "custom_dense"}
    exec(compile(generate(str(path), style), "custom_dense.py", "exec"), namespace)
    if style == "procedural":
        model = namespace["build_model"]()
    else:
        model = namespace["CustomDense"]().model
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (model.count_params(), trainable) == (
        expected.total_params,
        expected.trainable_params,
    )
    assert tuple(model.output.shape) == (None, 7)
    n_transitions = len(CUSTOM[case]["learner"]["groups"]) - 1
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.AveragePooling2D)]
    assert len(pools) == n_transitions
    x = random_batch(tuple(CUSTOM[case]["input_shape"]), seed=7)
    assert np.all(np.isfinite(np.asarray(model(x, training=False))))
