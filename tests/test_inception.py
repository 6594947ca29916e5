"""Inception v1 (GoogLeNet) and v3: the paper's Table 1, keras.applications' weights, the
auxiliary classifiers, and the slide defects KNOWN_BUGS.md lists for the inception block.

The generic checks (golden files, styles, training, save/load) run for these presets in
test_models.py and friends; this file holds what is particular to the family.
"""

import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    STYLES,
    as_outputs,
    build,
    default_metaparameters,
    full_size,
    golden_module,
    golden_path,
    keras_application,
    logits,
    plan,
)

from generator.errors import SpecError
from generator.pipeline import plan_for
from generator.spec import load_raw, validate

both_styles = pytest.mark.parametrize("style", STYLES)

# Szegedy et al. 2014, "Going Deeper with Convolutions", Table 1, as printed: per inception
# module its output grid (H = W), the filter columns (#1x1, #3x3 reduce, #3x3, #5x5 reduce,
# #5x5, pool proj), and the params (K) and ops (M) columns.
TABLE_1 = {
    "3a": (28, (64, 96, 128, 16, 32, 32), 159, 128),
    "3b": (28, (128, 128, 192, 32, 96, 64), 380, 304),
    "4a": (14, (192, 96, 208, 16, 48, 64), 364, 73),
    "4b": (14, (160, 112, 224, 24, 64, 64), 437, 88),
    "4c": (14, (128, 128, 256, 24, 64, 64), 463, 100),
    "4d": (14, (112, 144, 288, 32, 64, 64), 580, 119),
    "4e": (14, (256, 160, 320, 32, 128, 128), 840, 170),
    "5a": (7, (256, 160, 320, 32, 128, 128), 1072, 54),
    "5b": (7, (384, 192, 384, 48, 128, 128), 1388, 71),
}
COLUMNS = ("n_1x1", "n_3x3_reduce", "n_3x3", "n_5x5_reduce", "n_5x5", "n_pool_proj")
# The table's params column counts kernel weights (no biases) in units of 1024: that reading
# gives its conv 3x3 stem row (64 * 192 * 9 + 64 * 64 = 114,688 = 112.0K) and its linear
# layer (1024 * 1000 = 1000.0K; with biases it would be 1001K) exactly. Six module rows do not
# follow from the table's own filter columns under any reading (kernels or kernels + biases,
# K = 1000 or 1024): 4a, 4c, 4d, 4e, 5a and 5b are off by 2.8K to 54K. The ops column (kernel
# weights x output H x W, multiply-adds) follows from the filter columns for every row but
# 5a, whose 54M goes with its 1072K (1072 * 1024 * 49 = 53.8M), not with its columns (51.1M).
PARAMS_ERRATA = {"4a", "4c", "4d", "4e", "5a", "5b"}
OPS_ERRATA = {"5a"}
V1_CLASSES = 10


def table_weights(columns, c_in):
    """Kernel weights of one inception module, from Table 1's filter columns."""
    n_1x1, r3, n_3x3, r5, n_5x5, proj = columns
    return c_in * (n_1x1 + r3 + r5 + proj) + 9 * r3 * n_3x3 + 25 * r5 * n_5x5


def table_inputs():
    """Each module's input channels: the previous module's output (the stem gives 192)."""
    c_in, inputs = 192, {}
    for module, (_, columns, _, _) in TABLE_1.items():
        inputs[module] = c_in
        c_in = columns[0] + columns[2] + columns[4] + columns[5]
    return inputs


def module_layers(model, module):
    prefix = f"inception_{module}_"
    return [layer for layer in model.layers if layer.name.startswith(prefix)]


@pytest.fixture(scope="module")
def googlenet():
    """The full-size preset (224x224, auxiliary classifiers on), procedural style."""
    return build("inception_v1", "procedural", n_classes=V1_CLASSES)


# --------------------------------------------------------------------------- Table 1


def test_preset_sizes_are_the_table_1_columns():
    for style in STYLES:
        groups = default_metaparameters("inception_v1", style)["groups"]
        blocks = [block for group in groups for block in group["blocks"]]
        assert [tuple(block[c] for c in COLUMNS) for block in blocks] == [
            columns for _, columns, _, _ in TABLE_1.values()
        ]
        assert [group["aux_after"] for group in groups] == [[], [1, 4], []]  # after 4a, 4d


def test_inception_modules_match_table_1(googlenet):
    inputs = table_inputs()
    for module, (side, columns, params_k, ops_m) in TABLE_1.items():
        layers = module_layers(googlenet, module)
        convs = [layer for layer in layers if isinstance(layer, keras.layers.Conv2D)]
        assert len(convs) == 6, [layer.name for layer in layers]
        kernels = sum(math.prod(layer.kernel.shape) for layer in convs)
        biases = sum(math.prod(layer.bias.shape) for layer in convs)
        out = googlenet.get_layer(f"inception_{module}_output").output
        assert tuple(out.shape[1:3]) == (side, side), module

        # The model is the table's columns exactly: real 5x5 kernels, biased convolutions.
        assert kernels == table_weights(columns, inputs[module]), module
        assert biases == sum(columns), module

        # ops: multiply-adds = kernel weights x output pixels, printed in millions.
        ops = kernels * side * side / 1e6
        if module in OPS_ERRATA:
            assert abs(ops - ops_m) > 1, f"{module}: erratum fixed? ops {ops:.2f}M"
        else:
            assert abs(ops - ops_m) < 1, f"{module}: {ops:.2f}M vs Table 1's {ops_m}M"

        # params: kernel weights in units of 1024, printed rounded.
        kilo = kernels / 1024
        own = table_weights(columns, inputs[module]) / 1024  # the table's own columns
        if module in PARAMS_ERRATA:
            assert abs(own - params_k) > 1, f"{module}: erratum fixed? {own:.1f}K"
        else:
            assert abs(kilo - params_k) <= 1, f"{module}: {kilo:.1f}K vs Table 1's {params_k}K"


def test_table_1_reading_kernels_in_units_of_1024(googlenet):
    """The rows that pin down how the table counts: the 3x3 stem conv and the classifier."""
    stem = [googlenet.get_layer(n) for n in ("conv2_3x3_reduce", "conv2_3x3")]
    assert sum(math.prod(layer.kernel.shape) for layer in stem) / 1024 == 112.0  # 112K
    head = googlenet.get_layer("predictions")
    build_1000 = build("inception_v1", "procedural", include_aux=False)
    kernel = build_1000.get_layer("predictions").kernel
    assert math.prod(kernel.shape) / 1024 == 1000.0  # 1000K
    assert head.kernel.shape == (1024, V1_CLASSES)


def test_googlenet_counts_agree_with_the_plan(googlenet):
    assert plan("inception_v1").total_params == 13_378_280
    full = build("inception_v1", "oop")
    assert full.count_params() == plan("inception_v1").total_params
    main = build("inception_v1", "oop", include_aux=False)
    assert main.count_params() == 6_998_552
    # The paper's aux heads: 4x4x512 (4a) and 4x4x528 (4d) after the 5x5/3 average pool.
    assert tuple(googlenet.get_layer("aux1_pool").output.shape) == (None, 4, 4, 512)
    assert tuple(googlenet.get_layer("aux2_pool").output.shape) == (None, 4, 4, 528)


# --------------------------------------------------------------------------- KNOWN_BUGS


def test_known_bug_5x5_branch_and_pool_padding(googlenet):
    """KNOWN_BUGS.md: the slides' "5x5" branch is a 3x3 with the 3x3 branch's filters, and
    its pool branch has no padding='same'. Every module must have a real 5x5 with the
    #5x5 column's filters, and a 3x3/1 pool that keeps H and W."""
    inputs = table_inputs()
    for module, (side, columns, _, _) in TABLE_1.items():
        _, r3, n_3x3, r5, n_5x5, proj = columns
        name = f"inception_{module}"
        assert n_5x5 != n_3x3  # so the check below tells the two branches apart
        assert tuple(googlenet.get_layer(f"{name}_5x5").kernel.shape) == (5, 5, r5, n_5x5)
        assert tuple(googlenet.get_layer(f"{name}_3x3").kernel.shape) == (3, 3, r3, n_3x3)
        assert googlenet.get_layer(f"{name}_5x5").get_config()["padding"] == "same"
        pool = googlenet.get_layer(f"{name}_pool")
        config = pool.get_config()
        assert isinstance(pool, keras.layers.MaxPooling2D)
        assert config["padding"] == "same", module
        assert tuple(config["pool_size"]) == (3, 3) and tuple(config["strides"]) == (1, 1)
        assert tuple(pool.output.shape) == (None, side, side, inputs[module])
        assert tuple(googlenet.get_layer(f"{name}_pool_proj").kernel.shape) == (
            1,
            1,
            inputs[module],
            proj,
        )


@both_styles
def test_emitted_block_says_5x5_with_the_5x5_filters(style):
    """The same, read from the emitted source: the 5x5 conv's arguments."""
    source = golden_path("inception_v1", style).read_text(encoding="utf-8")
    calls = re.findall(r"layers\.Conv2D\(\s*(\w+), (\d+),[^)]*name=f\"\{name\}_(\w+)\"", source)
    by_name = {name: (filters, kernel) for filters, kernel, name in calls}
    assert by_name["5x5"] == ("n_5x5", "5")
    assert by_name["3x3"] == ("n_3x3", "3")
    assert re.search(r"MaxPooling2D\(\s*3, strides=1, padding=\"same\"", source)


# --------------------------------------------------------------------------- v1 heads


@both_styles
def test_googlenet_outputs(style):
    model = build("inception_v1", style, n_classes=V1_CLASSES)  # include_aux defaults to True
    assert len(model.outputs) == 3
    assert [tuple(out.shape) for out in model.outputs] == [(None, V1_CLASSES)] * 3
    assert model.output_names == ["predictions", "aux1_predictions", "aux2_predictions"]

    single = build("inception_v1", style, n_classes=V1_CLASSES, include_aux=False)
    assert len(single.outputs) == 1 and tuple(single.output.shape) == (None, V1_CLASSES)
    assert not any(layer.name.startswith("aux") for layer in single.layers)

    features = build("inception_v1", style, include_top=False)  # any size, by default
    assert tuple(features.output.shape) == (None, None, None, 1024)
    sized = build("inception_v1", style, include_top=False, input_shape=(224, 224, 3))
    assert tuple(sized.output.shape) == (None, 7, 7, 1024)
    assert not any(isinstance(layer, keras.layers.Dense) for layer in features.layers)
    pooled = build("inception_v1", style, include_top=False, pooling="avg")
    assert tuple(pooled.output.shape) == (None, 1024)

    with pytest.raises(ValueError, match="include_aux"):
        build("inception_v1", style, input_shape=(None, None, 3))
    flexible = build("inception_v1", style, input_shape=(None, None, 3), include_aux=False)
    assert tuple(flexible.output.shape) == (None, 1000)


@pytest.mark.slow
@both_styles
def test_googlenet_trains_with_weighted_auxiliary_losses(style):
    shape = (96, 96, 3)
    model = build("inception_v1", style, input_shape=shape, n_classes=V1_CLASSES)
    x = tf.constant(np.random.default_rng(5).standard_normal((2, *shape), dtype=np.float32))
    y = tf.constant([3, 8])
    weights = [1.0, 0.3, 0.3]
    variables = model.trainable_variables

    with tf.GradientTape() as tape:
        outputs = as_outputs(model(x, training=True))
        assert len(outputs) == 3
        losses = [
            tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, o)) for o in outputs
        ]
        loss = sum(w * part for w, part in zip(weights, losses, strict=True))
    assert np.isfinite(float(loss)) and all(np.isfinite(float(part)) for part in losses)
    grads = tape.gradient(loss, variables)
    for variable, grad in zip(variables, grads, strict=True):
        assert grad is not None, f"no gradient for {variable.path}"
        assert np.all(np.isfinite(grad.numpy())), f"non-finite gradient for {variable.path}"
    aux_only = [v.path for v in variables if v.path.startswith("aux")]
    assert len(aux_only) == 2 * 2 * 3  # two heads, three layers with kernel and bias

    # The recipe the emitted docstring gives.
    model.compile(
        optimizer="sgd",
        loss=["sparse_categorical_crossentropy"] * 3,
        loss_weights=weights,
    )
    result = model.train_on_batch(x, [y, y, y], return_dict=True)
    assert np.isfinite(result["loss"]), result


def test_googlenet_block_tears_off():
    inception = golden_module("inception_v1", "oop").InceptionV1
    inputs = keras.Input((28, 28, 192))
    out = inception.inception_block(inputs, 64, 96, 128, 16, 32, 32, name="probe")
    assert tuple(out.shape) == (None, 28, 28, 256)
    block = keras.Model(inputs, out)
    assert block.count_params() == table_weights(TABLE_1["3a"][1], 192) + sum(TABLE_1["3a"][1])


# --------------------------------------------------------------------------- v3


def keras_inception_v3(**kwargs):
    keras.backend.clear_session()  # Keras numbers unnamed layers per session: conv2d, conv2d_1 ...
    return keras.applications.InceptionV3(weights=None, **kwargs)


KERAS_NAMED = re.compile(r"(conv2d|batch_normalization|activation)(_\d+)?|mixed\d+")


def test_inception_v3_names_follow_keras_applications():
    reference = keras_inception_v3(input_shape=(75, 75, 3))
    ref_names = {layer.name for layer in reference.layers}
    assert "conv2d" in ref_names and "conv2d_93" in ref_names and "conv2d_94" not in ref_names
    for style in STYLES:
        ours = build("inception_v3", style, input_shape=(75, 75, 3))
        our_names = {layer.name for layer in ours.layers}
        # Every conv2d_bn unit and every mixedN block has keras.applications' name; the
        # unweighted pools and inner concatenations are named after their block instead.
        assert {n for n in our_names if KERAS_NAMED.fullmatch(n)} == {
            n for n in ref_names if KERAS_NAMED.fullmatch(n)
        }
        weighted = [layer.name for layer in ours.layers if layer.weights]
        assert weighted == [layer.name for layer in reference.layers if layer.weights]


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["inception_v3"])
@both_styles
def test_full_size_inception_v3_weights_copy_by_name_at_299(preset, style):
    """keras.applications.InceptionV3 and the shared full-size model (299x299): the same
    count, the same weighted layers by name, and with its weights the same logits."""
    reference = keras_application(preset)  # first: its automatic names start at conv2d
    ours = full_size(preset, style).model
    assert ours.count_params() == reference.count_params() == 23_851_784
    ref_layers = {layer.name: layer for layer in reference.layers if layer.weights}
    our_layers = {layer.name: layer for layer in ours.layers if layer.weights}
    assert set(our_layers) == set(ref_layers)
    for name, layer in ref_layers.items():
        our_layers[name].set_weights(layer.get_weights())

    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, (2, 299, 299, 3)).astype(np.float32)
    expected, got = logits(reference, x), logits(ours, x)
    assert tuple(got.shape) == (2, 1000)
    diff = float(np.max(np.abs(np.asarray(got) - np.asarray(expected))))
    assert diff < 1e-5, f"inception_v3 ({style}) vs keras.applications: {diff:.3g}"


@pytest.mark.slow
@both_styles
def test_inception_v3_auxiliary_head(style):
    assert len(build("inception_v3", style, input_shape=(75, 75, 3)).outputs) == 1  # default
    model = build("inception_v3", style, include_aux=True, n_classes=7)
    assert [tuple(out.shape) for out in model.outputs] == [(None, 7), (None, 7)]
    # On the 17x17 grid after mixed7: 5x5/3 pool -> 5x5, the valid 5x5 conv -> 1x1.
    assert model.get_layer("aux1_pool").input is model.get_layer("mixed7").output
    assert tuple(model.get_layer("aux1_pool").output.shape) == (None, 5, 5, 768)
    assert tuple(model.get_layer("aux1_conv2").output.shape) == (None, 1, 1, 768)
    with_aux = plan_for("inception_v3", ["classifier.aux.include=true", "n_classes=7"])
    assert model.count_params() == with_aux.total_params
    aux = sum(layer.count_params() for layer in model.layers if layer.name.startswith("aux1"))
    assert aux == 768 * 128 + 3 * 128 + 5 * 5 * 128 * 768 + 3 * 768 + 768 * 7 + 7

    x = np.random.default_rng(8).standard_normal((1, 299, 299, 3), dtype=np.float32)
    main, side = as_outputs(model(x, training=False))
    assert np.allclose(np.sum(main, axis=-1), 1.0) and np.allclose(np.sum(side, axis=-1), 1.0)


@pytest.mark.parametrize(
    ("preset", "side", "tap", "smallest"),
    [("inception_v3", 75, 3, 17), ("inception_v3", 298, 16, 17), ("inception_v1", 64, 4, 5)],
)
@both_styles
def test_auxiliary_head_refuses_a_tap_too_small(preset, side, tap, smallest, style):
    """include_aux=True on an input too small for the auxiliary head: a ValueError that
    names the head and the sizes, not Keras' shape error from inside its pooling layer."""
    message = f"aux1 needs a tap of at least {smallest}x{smallest}, got {tap}x{tap}"
    with pytest.raises(ValueError, match=message):
        build(preset, style, input_shape=(side, side, 3), include_aux=True)
    assert len(build(preset, style, input_shape=(side, side, 3), include_aux=False).outputs) == 1


def test_inception_v3_blocks_tear_off():
    inception = golden_module("inception_v3", "oop").InceptionV3
    counter = {"conv2d": 0}
    out = inception.block_17x17(
        keras.Input((17, 17, 768)), 192, 160, 192, 160, 192, 192, name="probe", counter=counter
    )
    assert tuple(out.shape) == (None, 17, 17, 768)
    assert counter == {"conv2d": 10}  # ten conv2d_bn units
    out = inception.reduction_35x35(
        keras.Input((35, 35, 288)), 384, 64, 96, name="r", counter=counter
    )
    assert tuple(out.shape) == (None, 17, 17, 768)
    out = inception.block_8x8(
        keras.Input((8, 8, 1280)), 320, 384, 384, 448, 384, 192, name="c", counter=counter
    )
    assert tuple(out.shape) == (None, 8, 8, 2048)
    assert counter == {"conv2d": 10 + 4 + 9}


# --------------------------------------------------------------------------- spec


def spec_error(target, overrides=()):
    with pytest.raises(SpecError) as info:
        plan_for(target, list(overrides))
    return info.value


def test_spec_rules_for_the_inception_family():
    err = spec_error("inception_v1", ["learner.groups.1.aux_after=[1, 6]"])
    assert err.path == "learner.groups[1]" and "aux_after names block 6" in err.reason
    err = spec_error("inception_v1", ["learner.groups.1.aux_after=[4, 1]"])
    assert "increasing order" in err.reason
    err = spec_error("inception_v1", ["learner.groups.1.aux_after=[]"])
    assert err.reason.startswith("classifier.aux: no learner group lists aux_after")
    err = spec_error("inception_v3", ["classifier.aux=null"])
    assert "learner.groups[1].aux_after: needs classifier.aux" in err.reason
    err = spec_error("inception_v3", ["learner.groups.2.reduction={n_3x3: 8}"])
    assert err.path == "learner.groups[2].reduction"
    err = spec_error("inception_v3", ["learner.groups.0.grid=9x9"])
    assert err.path == "learner.groups[0]" and "'35x35', '17x17', '8x8'" in err.reason
    err = spec_error("inception_v3", ["learner.groups.1.blocks.0.n_5x5=8"])
    assert err.path == "learner.groups[1].blocks[0].n_5x5" and err.reason == "unknown field"
    err = spec_error("inception_v1", ["stem.n_filters=32"])
    assert err.path == "stem" and "applies only to stem kind" in err.reason
    assert "the inception_v1 stem's sizes are the paper's" in err.reason
    # The auxiliary heads' 5x5/3 pool needs a 5x5 tap: 64x64 leaves 4x4 at 4a.
    err = spec_error("inception_v1", ["input_shape=[64, 64, 3]"])
    assert err.path == "classifier.aux" and "5x5/3 average pool" in err.reason
    assert plan_for("inception_v1", ["input_shape=[64, 64, 3]", "classifier.aux.include=false"])
    err = spec_error("inception_v3", ["input_shape=[64, 64, 3]"])
    assert "shrink" in err.reason


def test_show_round_trips_the_inception_specs():
    for preset in ("inception_v1", "inception_v3"):
        raw, _ = load_raw(preset)
        spec = validate(raw, preset)
        again = validate(spec.model_dump(mode="json", exclude_none=True), preset)
        assert again == spec
        assert plan(preset).templates[-1].startswith("classifiers/aux_inception")
