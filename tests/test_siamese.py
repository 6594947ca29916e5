"""The Siamese twin (Koch et al. 2015) and twins on other backbones.

The generic checks (reference count of siamese_omniglot, styles, training step, files,
save and load) run in test_models.py and test_roundtrip.py. Here: the twin's layers as the
paper lists them, one twin shared by both branches (the count is not doubled, the variables
are the same), the L1 distance layer, the embedding model built alone, a training step on
pairs, any block type as the twin's backbone, and the spec rules of the `twin:` section.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools

import keras
import numpy as np
import pytest
import yaml
from conftest import (
    STYLES,
    assert_edit_is_refused,
    build,
    golden_module,
    golden_path,
    model_class,
    plan,
)

from generator.errors import SpecError
from generator.pipeline import generate, plan_for
from generator.spec import load_raw

SIAMESE = "siamese_omniglot"
KOCH_INPUT = (105, 105, 1)
SMALL = (75, 75, 1)  # the smallest square the four unpadded convolutions and pools allow
# Koch et al. 2015, Figure 4: (filters, kernel, max pool after it)
KOCH_CONVS = [(64, 10, True), (128, 7, True), (128, 4, True), (256, 4, False)]
both_styles = pytest.mark.parametrize("style", STYLES)
_ids = itertools.count()


def twin_of(model) -> keras.Model:
    return model.get_layer("twin")


def twin_alone(style, **kwargs) -> keras.Model:
    """The embedding model, built on its own (no Siamese model around it)."""
    module = golden_module(SIAMESE, style)
    if style == "procedural":
        return module.build_twin(**kwargs)
    return model_class(module, SIAMESE)().build_twin(**kwargs)


def pairs(shape, batch=4, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((batch, *shape), dtype=np.float32) for _ in range(2)]


@both_styles
def test_the_twin_is_koch_et_al(style):
    twin = twin_alone(style)
    assert tuple(twin.input.shape) == (None, *KOCH_INPUT)
    convs = [layer for layer in twin.layers if isinstance(layer, keras.layers.Conv2D)]
    pools = [layer for layer in twin.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert [(c.filters, c.kernel_size, c.padding) for c in convs] == [
        (filters, (k, k), "valid") for filters, k, _ in KOCH_CONVS
    ]
    assert all(c.get_config()["activation"] == "relu" for c in convs)
    assert [p.name for p in pools] == [
        f"block{i}_pool" for i, (*_, pooled) in enumerate(KOCH_CONVS, start=1) if pooled
    ]
    assert all(tuple(p.pool_size) == (2, 2) for p in pools)
    # 105 -> 96 -> 48 -> 42 -> 21 -> 18 -> 9 -> 6: 6 x 6 x 256 maps, flattened.
    assert tuple(convs[-1].output.shape) == (None, 6, 6, 256)
    embedding = twin.get_layer("embedding")
    assert embedding.units == 4096 and embedding.get_config()["activation"] == "sigmoid"
    assert embedding.kernel.shape == (6 * 6 * 256, 4096)
    assert tuple(twin.output.shape) == (None, 4096)


@pytest.mark.slow
@both_styles
def test_one_twin_shared_by_both_branches(style):
    model = build(SIAMESE, style)  # full size: the paper's 38,951,745 parameters
    twin = twin_of(model)
    head = model.get_layer("similarity")
    assert head.units == 1 and head.get_config()["activation"] == "sigmoid"
    # Counted once: the twin, plus the 4096 -> 1 sigmoid unit; a second twin would double it.
    assert model.count_params() == twin.count_params() + head.count_params()
    assert head.count_params() == 4096 + 1
    assert model.count_params() == plan(SIAMESE).total_params < 2 * twin.count_params()
    # Both inputs flow through that one layer object: the same variables, not copies.
    assert [layer for layer in model.layers if isinstance(layer, keras.Model)] == [twin]
    assert len(twin._inbound_nodes) == 2
    ids = {id(v) for v in model.weights}
    assert ids == {id(v) for v in twin.weights} | {id(v) for v in head.weights}
    distance = model.get_layer("l1_distance")
    left, right = distance.input
    assert left is not right
    assert left._keras_history.operation is right._keras_history.operation is twin


@both_styles
def test_identical_inputs_give_the_same_embedding_on_both_branches(style):
    model = build(SIAMESE, style, input_shape=SMALL)
    both = keras.Model(model.inputs, model.get_layer("l1_distance").input)  # the two branches
    image = pairs(SMALL, seed=1)[0]
    left, right = (np.asarray(e) for e in both.predict_on_batch([image, image]))
    assert left.shape == (4, 4096)
    np.testing.assert_array_equal(left, right)
    other = pairs(SMALL, seed=2)[0]
    left, right = (np.asarray(e) for e in both.predict_on_batch([image, other]))
    assert np.abs(left - right).max() > 1e-4, "different images, same embedding"


@both_styles
def test_l1_distance_is_a_layer_of_keras_ops(style):
    model = build(SIAMESE, style, input_shape=SMALL)
    layer = model.get_layer("l1_distance")
    assert isinstance(layer, keras.layers.Layer)
    assert not isinstance(layer, keras.layers.Lambda)
    assert type(layer).__name__ == "L1Distance" and not layer.weights
    a, b = np.random.default_rng(3).standard_normal((2, 5, 7)).astype("float32")
    np.testing.assert_allclose(np.asarray(layer([a, b])), np.abs(a - b), rtol=1e-6)
    tree = ast.parse(golden_path(SIAMESE, style).read_text(encoding="utf-8"))
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert "ops.abs" in calls
    assert not any("Lambda" in call for call in calls)


@both_styles
def test_the_twin_builds_alone(style):
    twin = twin_alone(style, input_shape=SMALL)
    assert twin.name == "twin" and len(twin.inputs) == 1
    assert tuple(twin.output.shape) == (None, 4096)
    # A smaller embedding for another task: the sizes are data.
    small = twin_alone(style, input_shape=SMALL, metaparameters={"embedding_units": 64})
    assert tuple(small.output.shape) == (None, 64)
    assert twin.count_params() - small.count_params() == (4096 - 64) * (2 * 2 * 256 + 1)
    if style == "oop":
        instance = model_class(golden_module(SIAMESE, style), SIAMESE)(input_shape=SMALL)
        assert instance.twin is twin_of(instance.model)
    with pytest.raises(ValueError, match="nope"):
        twin_alone(style, metaparameters={"nope": 1})


@both_styles
def test_a_training_step_on_pairs(style):
    keras.utils.set_random_seed(0)
    model = build(SIAMESE, style, input_shape=SMALL)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="binary_crossentropy")
    left, right = pairs(SMALL, seed=4)
    right[:2] = left[:2]  # two pairs of the same image, two of different ones
    labels = np.array([[1.0], [1.0], [0.0], [0.0]], dtype="float32")
    before = [np.array(v) for v in twin_of(model).trainable_weights]
    losses = [float(model.train_on_batch([left, right], labels)) for _ in range(3)]
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], losses
    after = twin_of(model).trainable_weights
    assert all(not np.array_equal(b, np.array(a)) for b, a in zip(before, after, strict=True))


# ------------------------------------------------------------------ any backbone


def twin_spec(preset: str) -> dict:
    """A classifier preset's backbone as a Siamese twin: its stem and learner, an average
    pooled 128-unit embedding; no classifier."""
    data = load_raw(preset)[0]
    for key in ("classifier", "n_classes", "reference", "citation", "class_name", "title"):
        data.pop(key, None)
    for group in data["learner"]["groups"]:
        group.pop("aux_after", None)  # Inception's auxiliary classifiers: no classifier here
    data.update(name=f"{preset}_twin", architecture="siamese")
    data["twin"] = {"pooling": "avg", "embedding_units": 128, "embedding_activation": "relu"}
    return data


BACKBONES = ["resnet18", "resnet50_v2", "vgg16", "densenet121", "squeezenet1_1"]
BACKBONES += ["inception_v1", "inception_v3", "se_resnext50_32x4d"]


@pytest.mark.parametrize("preset", BACKBONES)
def test_every_block_type_is_a_backbone(preset, tmp_path):
    """The twin reuses the classifier's backbone pieces: every block type plans and renders
    as a twin, its parameters those of the classifier's backbone plus the embedding."""
    data = twin_spec(preset)
    path = tmp_path / f"{preset}_twin.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    twin = plan_for(str(path))
    features = [s for s in plan_for(preset).stages if s.kind != "classifier"]
    backbone = sum(s.params for s in features)
    channels = features[-1].output_shape[-1]
    assert twin.total_params == backbone + (channels * 128 + 128) + (128 + 1)
    for style in STYLES:
        text = generate(str(path), style)
        assert "def build_twin(" in text and "L1Distance" in text


def load_generated(text: str, tmp_path, stem: str):
    path = tmp_path / f"{stem}.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"_siamese_{stem}_{next(_ids)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@both_styles
def test_a_resnet18_twin_shares_its_weights(style, tmp_path):
    data = twin_spec("resnet18")
    data["learner"]["groups"] = data["learner"]["groups"][:2]  # small enough for a test
    path = tmp_path / "resnet18_twin.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    module = load_generated(generate(str(path), style), tmp_path, f"twin_{style}")
    shape = (32, 32, 3)
    if style == "procedural":
        model = module.build_model(input_shape=shape)
    else:
        model = module.Resnet18Twin(input_shape=shape).model
    twin = twin_of(model)
    assert model.count_params() == plan_for(str(path)).total_params
    assert model.count_params() == twin.count_params() + 128 + 1
    assert twin.get_layer("conv2_block1_1_conv") is not None  # the ResNet's own layer names
    both = keras.Model(model.inputs, model.get_layer("l1_distance").input)
    image = pairs(shape, batch=2, seed=5)[0]
    left, right = (np.asarray(e) for e in both.predict_on_batch([image, image]))
    np.testing.assert_array_equal(left, right)


@both_styles
def test_the_resnet18_twin_preset_is_resnet18_features_and_one_unit(style, param_counts):
    """resnet18_twin (no public reference): the plan's count is what Keras builds, and it is
    torchvision ResNet18's trainable count less its 1000-way layer (512 * 1000 + 1000), plus
    the similarity unit (512 + 1); the twin gives keras.applications' pooling="avg"
    features, 512 per image."""
    model = build("resnet18_twin", style)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (model.count_params(), trainable) == (
        plan("resnet18_twin").total_params,
        plan("resnet18_twin").trainable_params,
    )
    compare, resnet18 = param_counts["resnet18"]
    assert compare == "trainable"
    assert trainable == resnet18 - (512 * 1000 + 1000) + (512 + 1) == 11_177_025
    twin = twin_of(model)
    assert tuple(twin.output.shape) == (None, 512)
    assert isinstance(twin.layers[-1], keras.layers.GlobalAveragePooling2D)
    assert "embedding" not in {layer.name for layer in twin.layers}  # no dense embedding


# ------------------------------------------------------------------ spec rules


def _without(key):
    def edit(data):
        del data[key]

    return edit


def _set(**fields):
    def edit(data):
        data.update(fields)

    return edit


def _twin(**fields):
    def edit(data):
        data["twin"].update(fields)

    return edit


GOOGLENET_LEARNER = load_raw("inception_v1")[0]["learner"]
SPEC_ERRORS = {
    "twin-without-a-learner": (_without("learner"), "learner: required for architecture"),
    "siamese-without-a-twin": (_without("twin"), "twin: required for architecture 'siamese'"),
    "siamese-with-a-classifier": (
        _set(classifier={"kind": "avg_pool"}),
        "classifier: does not apply to architecture 'siamese'",
    ),
    "siamese-with-classes": (_set(n_classes=10), "n_classes: applies only to architecture"),
    "twin-on-a-classifier": (
        _set(architecture="classifier", classifier={"kind": "avg_pool"}),
        "twin: does not apply to architecture 'classifier'",
    ),
    "zero-embedding": (_twin(embedding_units=0), "twin.embedding_units: must be >= 1, got 0"),
    "activation-without-embedding-layer": (  # null units: the pooled features, no dense
        _twin(embedding_units=None, embedding_activation="relu"),
        "twin: embedding_activation: applies only with embedding_units",
    ),
    "unknown-distance": (_twin(distance="l2"), "twin.distance: must be one of 'l1'"),
    "unknown-twin-field": (_twin(units=4), "twin.units: unknown field"),
    "twin-as-a-detector": (  # a detector's backbone is the learner, its head the classifier
        _set(architecture="rcnn"),
        "classifier: required for architecture 'rcnn'",
    ),
    "no-architecture": (_set(architecture="gan"), "architecture: must be one of"),
    "twin-with-auxiliary-taps": (  # GoogLeNet's backbone, its aux_after left in
        lambda data: data.update(stem={"kind": "inception_v1"}, learner=GOOGLENET_LEARNER),
        "learner.groups[1].aux_after: auxiliary classifiers apply only to architecture",
    ),
}


@pytest.mark.parametrize("case", SPEC_ERRORS)
def test_spec_errors_are_one_line(case):
    edit, message = SPEC_ERRORS[case]
    assert_edit_is_refused(SIAMESE, edit, message)


def test_a_collapsing_twin_is_refused_by_the_plan():
    with pytest.raises(SpecError) as info:
        plan_for(SIAMESE, ["input_shape=[64, 64, 1]"])
    text = str(info.value)
    assert "\n" not in text and "learner.groups[3]" in text and "shrink" in text, text
