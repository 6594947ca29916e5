"""The plan is held to Keras on counts AND shapes, for random valid specs.

Convolution parameters do not depend on H and W, so equal counts cannot see a shape error;
yet the plan's shape walk decides which specs collapse, what the diagram and `modelgen
summary` show, how wide a flatten head is and a detector's feature stride. Here hypothesis
builds small random valid specs of every block type (each stem kind, classifier kind,
classifier.heads, auxiliary classifiers, a pre-stem) and of every architecture (Siamese
twin, AutoEncoder, R-CNN, Fast R-CNN, Faster R-CNN), renders each in memory in a random
style, builds it with Keras and asserts: the plan's total and trainable counts are the
model's, and every stage row's output shape is that of the layer it names (Stage.layer,
through the sub-models), whose name starts with the row's prefix.

Strategies are biased towards the cases a planner may get wrong: a bottleneck group whose
first block gets 4 * n_filters channels at stride 1 (an identity shortcut), fire modules
whose widths repeat (the simple bypass adds), strides of 3, odd sides, valid convolutions.
Derandomized, without an example database: the same examples on every run.
MODELGEN_PLAN_SCALE=10 runs 10x the examples, new ones each run.
"""

from __future__ import annotations

import os
import types

import pytest
from conftest import cheap_initial_values
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from generator import registry
from generator.errors import SpecError
from generator.plan import make_plan
from generator.render import render_source
from generator.spec import validate

SCALE = int(os.environ.get("MODELGEN_PLAN_SCALE", "1"))
PLAN = settings(
    deadline=None,
    derandomize=SCALE == 1,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
BLOCKS = (
    "plain",
    "vgg",
    "basic",
    "bottleneck",
    "preact_bottleneck",
    "preact_basic",
    "dense",
    "depthwise_separable",
    "inverted_residual",
    "mobilenet_v3",
    "fire",
    "inception_v1",
    "inception_v3",
    "xception",
    "mixed",  # a residual learner whose groups mix basic and bottleneck blocks
)
# Examples per test: 15 kinds of learner x 14 classifiers + the other architectures = 285.
CLASSIFIER_EXAMPLES = 14
ARCHITECTURE_EXAMPLES = {"siamese": 25, "autoencoder": 15, "rcnn": 12, "fast_rcnn": 12}
ARCHITECTURE_EXAMPLES["faster_rcnn"] = 11

small = st.integers(1, 8)


# ------------------------------------------------------------------------- strategies


def stem_for(draw, block: str) -> dict:
    """Any stem kind (a few more often with the blocks they belong to)."""
    usual = {
        "preact_bottleneck": "resnet_preact",
        "preact_basic": "conv",
        "dense": "densenet",
        "depthwise_separable": "mobilenet",
        "inverted_residual": "mobilenet_v2",
        "mobilenet_v3": "mobilenet_v3",
        "fire": "squeezenet",
        "inception_v1": "inception_v1",
        "inception_v3": "inception_v3",
        "xception": "xception",
    }.get(block, "resnet")
    learner = registry.BLOCKS["basic" if block == "mixed" else block].learner
    kinds = [  # every registered kind whose metaparameters the learner has (alpha ...)
        kind
        for kind, piece in registry.STEMS.items()
        if all(arg in learner.model_fields for arg in piece.args)
    ]
    kind = draw(st.sampled_from([usual, usual, *kinds]))
    stem, piece = {"kind": kind}, registry.STEMS[kind]
    fields = piece.fields
    if "n_filters" in fields:
        width = st.integers(1, 16)
        several = st.lists(width, min_size=2, max_size=3)
        stem["n_filters"] = draw(st.one_of(width, several) if piece.layered else width)
    if "kernel_size" in fields:
        stem["kernel_size"] = draw(st.sampled_from([1, 3, fields["kernel_size"]]))
    if "strides" in fields:
        stem["strides"] = draw(st.sampled_from([1, 2, fields["strides"]]))
    if "padding" in fields:
        stem["padding"] = draw(st.sampled_from(["same", "valid", 0, 1, fields["padding"]]))
    for switch in ("pool", "bn_relu"):
        if switch in fields:
            stem[switch] = draw(st.booleans())
    return stem


def groups_for(draw, block: str, stem: dict) -> list[dict]:
    n_groups = draw(st.integers(1, 3))
    if block == "plain":
        return [
            {
                "n_filters": draw(small),
                "kernel_size": draw(st.integers(1, 5)),
                "pool": draw(st.booleans()),
            }
            for _ in range(n_groups)
        ]
    if block == "vgg":
        return [
            {"n_filters": draw(small), "n_layers": draw(st.integers(1, 2))} for _ in range(n_groups)
        ]
    if block in ("basic", "bottleneck", "preact_bottleneck", "preact_basic", "mixed"):
        groups = []
        for index in range(n_groups):
            same = index and draw(st.booleans())  # the width of the group before: identity
            n_filters = groups[-1]["n_filters"] if same else draw(st.integers(1, 8))
            strides = draw(st.sampled_from([1, 1, 2, 2, 3]))
            groups.append(
                {"n_filters": n_filters, "n_blocks": draw(st.integers(1, 2)), "strides": strides}
            )
        if block == "bottleneck" and stem.get("n_filters") and draw(st.booleans()):
            # 4 * n_filters channels in at stride 1: the first block's shortcut is identity
            stem["n_filters"] = 4 * groups[0]["n_filters"]
            groups[0]["strides"] = 1
        if block == "basic" and stem.get("n_filters") and draw(st.booleans()):
            stem["n_filters"] = groups[0]["n_filters"]
        return groups
    if block == "dense":
        return [{"n_blocks": draw(st.integers(1, 2))} for _ in range(n_groups)]
    if block == "depthwise_separable":
        return [
            {
                "n_filters": draw(st.integers(2, 8)),
                "n_blocks": draw(st.integers(1, 2)),
                "strides": draw(st.sampled_from([1, 2, 2, 3])),
            }
            for _ in range(n_groups)
        ]
    if block == "inverted_residual":  # a width kept at stride 1: the input added back
        groups = []
        for index in range(n_groups):
            same = index and draw(st.booleans())
            groups.append(
                {
                    "n_filters": groups[-1]["n_filters"] if same else draw(st.integers(2, 24)),
                    "n_blocks": draw(st.integers(1, 2)),
                    "strides": draw(st.sampled_from([1, 2, 2, 3])),
                    "expansion": draw(st.sampled_from([1, 2, 6])),
                }
            )
        return groups
    if block == "mobilenet_v3":  # rows of sizes; a width kept at stride 1 adds the input
        groups, width = [], None
        for _ in range(n_groups):
            blocks = []
            for _ in range(draw(st.integers(1, 2))):
                same = width is not None and draw(st.booleans())
                width = width if same else draw(st.integers(2, 24))
                blocks.append(
                    {
                        "n_filters": width,
                        "expansion": draw(st.sampled_from([1, 2.3, 4.5, 6])),
                        "kernel_size": draw(st.sampled_from([3, 5])),
                        "strides": draw(st.sampled_from([1, 1, 2, 3])),
                        "se": draw(st.booleans()),
                        "nonlinearity": draw(st.sampled_from(["relu", "hard_swish"])),
                    }
                )
            groups.append({"blocks": blocks})
        return groups
    if block == "xception":  # the last width kept (at stride 1): an identity shortcut
        groups = []
        for index in range(n_groups):
            widths = draw(st.lists(st.integers(1, 8), min_size=1, max_size=3))
            if index and draw(st.booleans()):
                widths[-1] = groups[-1]["n_filters"][-1]
            strides = draw(st.sampled_from([1, 1, 2, 3]))
            groups.append(
                {"n_filters": widths, "n_blocks": draw(st.integers(1, 2)), "strides": strides}
            )
        return groups
    if block == "fire":
        groups = []
        for _ in range(n_groups):
            widths = [draw(small)]
            if draw(st.booleans()):  # a repeated width: the simple bypass adds there
                widths.append(widths[0] if draw(st.booleans()) else draw(small))
            groups.append({"n_filters": widths})
        return groups
    if block == "inception_v1":
        fields = ("n_1x1", "n_3x3_reduce", "n_3x3", "n_5x5_reduce", "n_5x5", "n_pool_proj")
        return [
            {"blocks": [{f: draw(small) for f in fields} for _ in range(draw(st.integers(1, 2)))]}
            for _ in range(n_groups)
        ]
    return inception_v3_groups(draw, n_groups)


V3_BLOCK_FIELDS = {
    "35x35": ("n_1x1", "n_5x5_reduce", "n_5x5", "n_3x3dbl_reduce", "n_3x3dbl", "n_pool_proj"),
    "17x17": ("n_1x1", "n_7x7_reduce", "n_7x7", "n_7x7dbl_reduce", "n_7x7dbl", "n_pool_proj"),
    "8x8": ("n_1x1", "n_3x3_reduce", "n_3x3", "n_3x3dbl_reduce", "n_3x3dbl", "n_pool_proj"),
}
V3_REDUCTION_FIELDS = {
    "35x35": ("n_3x3", "n_3x3dbl_reduce", "n_3x3dbl"),
    "17x17": ("n_3x3_reduce", "n_3x3", "n_7x7x3_reduce", "n_7x7x3"),
}


def inception_v3_groups(draw, n_groups: int) -> list[dict]:
    groups = []
    for _ in range(n_groups):
        grid = draw(st.sampled_from(["35x35", "17x17", "8x8"]))
        blocks = [
            {f: draw(small) for f in V3_BLOCK_FIELDS[grid]} for _ in range(draw(st.integers(1, 2)))
        ]
        group = {"grid": grid, "blocks": blocks}
        if grid != "8x8" and draw(st.booleans()):
            group["reduction"] = {f: draw(small) for f in V3_REDUCTION_FIELDS[grid]}
        groups.append(group)
    return groups


def shrink(block: str, stem: dict, groups: list[dict]) -> int:
    """About how many times the backbone divides H and W (to draw a side that fits)."""
    factor = {"none": 1, "inception_v1": 8, "inception_v3": 9}.get(stem["kind"])
    if factor is None:  # the stem's own strides and pool (its metaparameters)
        fields = {**registry.STEMS[stem["kind"]].fields, **stem}
        factor = fields["strides"] * (2 if fields.get("pool") else 1)
    for index, group in enumerate(groups):
        if block in ("plain", "vgg"):
            factor *= 2 if group.get("pool", True) else 1
        elif block in ("basic", "bottleneck", "preact_bottleneck", "preact_basic", "mixed"):
            factor *= group["strides"]
        elif block in ("depthwise_separable", "inverted_residual", "xception"):
            factor *= group["strides"]
        elif block == "mobilenet_v3":
            for row in group["blocks"]:
                factor *= row["strides"]
        elif block == "inception_v3":
            factor *= 2 if group.get("reduction") else 1
        elif index:  # dense, fire, inception_v1: between groups
            factor *= 2
    return factor


@st.composite
def backbone(draw, block: str, max_side: int = 96, multiple: bool = False):
    """stem + learner + an input side that (mostly) fits them; multiple: a multiple of
    the backbone's stride (about: a detector refuses an input its stride does not fit)."""
    stem = stem_for(draw, block)
    groups = groups_for(draw, block, stem)
    learner = {"block": block, "groups": groups}
    if block == "mixed":  # each group names its own block type, or takes the learner's
        learner["block"] = draw(st.sampled_from(["basic", "bottleneck"]))
        for group in groups:
            if draw(st.booleans()):
                group["block"] = draw(st.sampled_from(["basic", "bottleneck"]))
        # Some group of the learner's own block type: learner.block bottleneck with only
        # basic groups is refused ("stride_on applies only to block 'bottleneck'": the
        # spec fills the bottleneck defaults from learner.block, then reads the groups').
        groups[0].pop("block", None)
        blocks = {group.get("block", learner["block"]) for group in groups}
        block = "bottleneck" if "bottleneck" in blocks else "basic"
    if block == "bottleneck":
        learner["stride_on"] = draw(st.sampled_from(["1x1", "3x3"]))
        learner["cardinality"] = draw(st.sampled_from([1, 1, 2, 4]))
        learner["width_per_group"] = draw(st.sampled_from([16, 64, 64]))
        learner["grouped_conv"] = draw(st.sampled_from(["native", "split"]))
        for group in groups:  # width_per_group * n_filters // 64 >= 1
            group["n_filters"] = max(group["n_filters"], 64 // learner["width_per_group"])
    if block in ("basic", "bottleneck") and draw(st.booleans()):
        learner["se_ratio"] = draw(st.sampled_from([1, 2, 4]))
    if block == "basic" and draw(st.booleans()):  # option A: the groups may not narrow
        learner["shortcut"] = "zero_pad"
        width = stem.get("n_filters", {"inception_v1": 192, "inception_v3": 192}.get(stem["kind"]))
        width = (width[-1] if isinstance(width, list) else width) or 3  # none: the pixels
        for group in groups:
            group["n_filters"] = width = max(group["n_filters"], width)
    if block in ("preact_bottleneck", "preact_basic"):
        learner["stride_block"] = draw(st.sampled_from(["first", "last"]))
    if block == "preact_basic":
        learner["widen_factor"] = draw(st.sampled_from([1, 2]))
        learner["dropout"] = draw(st.sampled_from([0.0, 0.3]))
    if block == "dense":
        learner["growth_rate"] = draw(small)
        learner["compression"] = draw(st.sampled_from([0.5, 0.75, 1.0]))
    if block == "fire":
        learner["bypass"] = draw(st.sampled_from(["none", "simple", "complex"]))
    if block == "depthwise_separable":  # widths the stem's and groups' sizes keep >= 1
        learner["alpha"] = draw(st.sampled_from([0.5, 1.0, 1.0, 1.5]))
        learner["depth_multiplier"] = draw(st.sampled_from([1, 1, 2]))
        if isinstance(stem.get("n_filters"), int):  # the conv stem's list: kept
            stem["n_filters"] = max(stem["n_filters"], 2)
    if block == "inverted_residual":
        learner["alpha"] = draw(st.sampled_from([0.35, 1.0, 1.0, 1.4]))
        learner["last_filters"] = draw(st.integers(1, 24))
    if block == "mobilenet_v3":
        learner["alpha"] = draw(st.sampled_from([0.5, 1.0, 1.0, 1.5]))
        learner["se_ratio"] = draw(st.sampled_from([0.25, 0.5]))
        learner["nonlinearity"] = draw(st.sampled_from(["relu", "hard_swish"]))
        learner["last_expansion"] = draw(st.sampled_from([1, 6]))
    if block == "xception":
        learner["tail_filters"] = draw(st.lists(st.integers(1, 8), min_size=1, max_size=2))
    factor = shrink(block, stem, groups)
    least = max(factor, 8) + stem.get("kernel_size", 0)  # a valid kernel trims the side
    if stem["kind"] == "inception_v3":
        least = max(least, 75)  # its valid convolutions and pools
    side = draw(st.integers(least, max(least + 8, min(2 * least, max_side))))
    if multiple:
        side = factor * -(-side // factor)
    width = side if draw(st.booleans()) else draw(st.integers(least, side + 8))
    data = {
        "input_shape": [side, width, draw(st.integers(1, 3))],
        "conventions": {"bias_before_bn": draw(st.booleans())},
        "stem": stem,
        "learner": learner,
    }
    return data


@st.composite
def classifier_specs(draw, block: str):
    data = draw(backbone(block))
    learner = registry.BLOCKS[data["learner"]["block"]].learner
    kinds = [  # every registered kind whose learner metaparameters the learner has
        kind
        for kind, piece in registry.CLASSIFIERS.items()
        if all(arg in learner.model_fields for arg in piece.learner_args)
    ]
    kind = draw(st.sampled_from(kinds))
    classifier, piece = {"kind": kind}, registry.CLASSIFIERS[kind]
    if "hidden_units" in piece.args:
        classifier["hidden_units"] = draw(small)
    if "dense_units" in piece.args:
        classifier["dense_units"] = draw(st.lists(small, max_size=2))
    if "dropout" in piece.args and draw(st.booleans()):
        classifier["dropout"] = 0.5
    if block.startswith("inception") and draw(st.booleans()):
        groups = data["learner"]["groups"]
        group = groups[draw(st.integers(0, len(groups) - 1))]
        group["aux_after"] = [draw(st.integers(1, len(group["blocks"])))]
        classifier["aux"] = {
            "kind": draw(st.sampled_from([block, "inception_v1"])),
            "include": draw(st.booleans()),
        }
    elif piece.allows_heads and draw(st.booleans()):
        n_heads = draw(st.integers(1, 3))
        classifier["heads"] = [
            {"name": f"head{index}", "n_classes": draw(small), "activation": "softmax"}
            for index in range(n_heads)
        ]
    if "heads" not in classifier:
        data["n_classes"] = draw(small)
    data["classifier"] = classifier
    if draw(st.integers(0, 3)) == 0:
        data["pre_stem"] = draw(
            st.sampled_from(
                [
                    {"flip": "horizontal"},
                    {"resizing": True, "rescaling": {"scale": 0.5}},
                    {"normalization": {"mean": [0.5], "std": [0.25]}},
                ]
            )
        )
    return data


@st.composite
def siamese_specs(draw):
    block = draw(st.sampled_from(BLOCKS))
    data = draw(backbone(block))
    units = draw(st.sampled_from([None, 8, 16]))
    data["architecture"] = "siamese"
    data["twin"] = {"pooling": draw(st.sampled_from(["flatten", "avg"])), "embedding_units": units}
    return data


@st.composite
def autoencoder_specs(draw):
    filters = draw(st.lists(small, min_size=1, max_size=3))
    factor = 2 ** len(filters)
    side = factor * draw(st.integers(1, max(1, 48 // factor)))
    width = factor * draw(st.integers(1, max(1, 48 // factor)))
    data = {
        "architecture": "autoencoder",
        "input_shape": [side, width, draw(st.integers(1, 3))],
        "autoencoder": {
            "filters": filters,
            "output_activation": draw(st.sampled_from(["sigmoid", "linear"])),
        },
    }
    if draw(st.booleans()):
        data["pre_stem"] = {"rescaling": {"scale": 0.5}}
    return data


def region_head(draw) -> dict:
    head = {"kind": "flatten", "dense_units": draw(st.lists(small, max_size=2))}
    if draw(st.booleans()):
        head["dropout"] = 0.5
    return head


@st.composite
def rcnn_specs(draw):
    block = draw(st.sampled_from(BLOCKS))
    data = draw(backbone(block, max_side=64))
    crop = max(8, data["input_shape"][0])
    data["input_shape"] = [draw(st.integers(16, 48)), draw(st.integers(16, 48)), 3]
    data.pop("pre_stem", None)
    data.update(architecture="rcnn", n_classes=draw(small), classifier=region_head(draw))
    data["detector"] = {"n_regions": draw(st.integers(1, 3)), "crop_size": crop}
    return data


@st.composite
def fast_rcnn_specs(draw, faster: bool = False):
    block = draw(st.sampled_from(BLOCKS))
    data = draw(backbone(block, max_side=64, multiple=True))
    detector = {"n_regions": draw(st.integers(1, 3)), "pool_size": draw(st.integers(1, 3))}
    if block == "vgg":
        detector["drop_last_pool"] = draw(st.booleans())
    if faster:
        detector["rpn"] = {
            "channels": draw(small),
            "anchor_scales": [16.0, 32.0][: draw(st.integers(1, 2))],
            "anchor_ratios": [1.0, 2.0][: draw(st.integers(1, 2))],
            "batch": 16,
            "train_pre_nms": 50,
            "train_post_nms": 10,
        }
        detector["detections"] = {}
    data.update(
        architecture="faster_rcnn" if faster else "fast_rcnn",
        n_classes=draw(small),
        classifier=region_head(draw),
        detector=detector,
    )
    if draw(st.integers(0, 3)) == 0:
        data["pre_stem"] = {"rescaling": {"scale": 0.5}}
    return data


# ------------------------------------------------------------------------- the property


def _module(source: str):
    module = types.ModuleType("_plan_vs_keras")
    exec(compile(source, "<plan_vs_keras>", "exec"), module.__dict__)
    return module


def _find(model, path: str):
    """The layer at "twin/conv2_block2_out": through the sub-models, by name."""
    *scopes, name = path.split("/")
    for scope in scopes:
        model = model.get_layer(scope)
    return model, model.get_layer(name)


def build(data: dict, style: str):
    """The spec's plan and its built Keras model (a spec the plan refuses is rejected)."""
    import keras

    keras.backend.clear_session(free_memory=False)
    data = {"name": "probe", **data}
    spec = validate(data, "probe.yaml")
    try:
        plan = make_plan(spec, "probe.yaml")
    except SpecError:
        reject()  # the plan refused the sizes (collapsing maps ...): nothing to compare
    module = _module(render_source(plan, style, 'spec file "probe.yaml"', "probe.yaml"))
    with cheap_initial_values():  # counts and shapes: the initial values are never read
        if style == "procedural":
            return plan, module.build_model()
        return plan, getattr(module, spec.class_name)().model


def assert_plan_is_keras(data: dict, style: str, built: list) -> None:
    import numpy as np

    plan, model = build(data, style)
    built.append(plan.spec.learner.block if plan.spec.learner else "autoencoder")
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    assert (model.count_params(), trainable) == (plan.total_params, plan.trainable_params)
    rows = [row for stage in plan.stages for row in stage.rows]
    assert sum(row.params for row in rows) == plan.total_params
    for row in rows:
        holder, layer = _find(model, row.layer)
        shape = tuple(layer.output.shape[1:])
        if row.layer.startswith("head/"):  # Faster R-CNN's head runs on the RoIs as a batch
            assert shape[0] == 1, (row.layer, shape)
            shape = (row.output_shape[0], *shape[1:])
        assert shape == row.output_shape, (row.prefix, row.layer, shape, row.output_shape)
        names = [other.name for other in holder.layers]
        for end in row.prefix.split(".."):
            assert any(name.startswith(end) for name in names), (row.prefix, end)


styles = st.sampled_from(["procedural", "oop"])


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS)
def test_classifier_plan_is_keras(block):
    built = []

    @settings(PLAN, max_examples=CLASSIFIER_EXAMPLES * SCALE)
    @given(data=classifier_specs(block), style=styles)
    def check(data, style):
        assert_plan_is_keras(data, style, built)

    check()
    assert len(built) >= CLASSIFIER_EXAMPLES * SCALE  # not cut short by refused specs


STRATEGIES = {
    "siamese": siamese_specs(),
    "autoencoder": autoencoder_specs(),
    "rcnn": rcnn_specs(),
    "fast_rcnn": fast_rcnn_specs(),
    "faster_rcnn": fast_rcnn_specs(faster=True),
}


@pytest.mark.slow
@pytest.mark.parametrize("architecture", list(STRATEGIES))
def test_architecture_plan_is_keras(architecture):
    built = []

    @settings(PLAN, max_examples=ARCHITECTURE_EXAMPLES[architecture] * SCALE)
    @given(data=STRATEGIES[architecture], style=styles)
    def check(data, style):
        assert_plan_is_keras(data, style, built)

    check()
    assert len(built) >= ARCHITECTURE_EXAMPLES[architecture] * SCALE
    if architecture != "autoencoder":  # many block types as a backbone
        assert len(set(built)) >= 4, sorted(set(built))


def test_examples_in_ci():
    """At least 200 examples across the block types and architectures."""
    total = CLASSIFIER_EXAMPLES * len(BLOCKS) + sum(ARCHITECTURE_EXAMPLES.values())
    assert total >= 200
    assert set(ARCHITECTURE_EXAMPLES) == set(STRATEGIES)


def test_every_registered_piece_has_a_strategy():
    """Stem and classifier kinds are drawn from the registry; a new block type or
    architecture registers itself, and this test fails until the strategies above can
    draw its groups or its sections too."""
    assert set(BLOCKS) - {"mixed"} == set(registry.BLOCKS)
    assert set(STRATEGIES) | {"classifier"} == set(registry.ARCHITECTURES)


def test_resnet50_with_a_256_filter_stem():
    """The find of the issue: stem.n_filters=256 gives conv2's first block 256 = 4 * 64
    channels at stride 1, so the template builds an identity block; the plan counted a
    projection (25,727,336). Keras counts 25,660,520."""
    from generator.pipeline import plan_for

    assert plan_for("resnet50", ["stem.n_filters=256"]).total_params == 25_660_520


@pytest.mark.slow
@pytest.mark.parametrize("style", ["procedural", "oop"])
def test_rcnn_on_a_densenet_builds(style):
    """DenseNet's last layers are named bn and relu (keras.applications' names); R-CNN's
    warp once wrote an ops.relu, which Keras names relu too, and refused the duplicate."""
    data = {
        "name": "rcnn_dense",
        "architecture": "rcnn",
        "input_shape": [64, 64, 3],
        "n_classes": 3,
        "stem": {"kind": "densenet", "n_filters": 8},
        "learner": {"block": "dense", "growth_rate": 4, "groups": [{"n_blocks": 1}] * 2},
        "classifier": {"kind": "flatten", "dense_units": [8]},
        "detector": {"n_regions": 2, "crop_size": 32},
    }
    assert_plan_is_keras(data, style, [])
