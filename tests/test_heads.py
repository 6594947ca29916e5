"""keras.applications-style head switches for every family: include_top, pooling, n_classes,
classifier_activation, and the ValueErrors for bad combinations.

Every family's smallest preset, whatever its classifier kind (dense, SqueezeNet's conv
classifier, GoogLeNet's dropout head) and auxiliary heads, in both styles.
"""

import keras
import numpy as np
import pytest
from conftest import (
    PRESETS,
    STYLES,
    architecture,
    as_outputs,
    build,
    cheap_initial_values,
    default_metaparameters,
    plan,
    shallow,
    small_input,
)

from generator.errors import SpecError
from generator.pipeline import plan_for

# The head switches are a classifier's (the siamese and autoencoder presets have no head:
# test_siamese.py and test_autoencoder.py check what they build instead; a detector, rcnn or
# fast_rcnn, has none either: tests/test_detectors.py holds its builder's arguments).
CLASSIFIERS = [preset for preset in PRESETS if architecture(preset) == "classifier"]


def smallest_of_each_family() -> list[str]:
    """One preset per (family, classifier kind, auxiliary head kind): the one with the
    fewest parameters, so every head template is exercised at the least cost."""
    chosen: dict[tuple, str] = {}
    for preset in CLASSIFIERS:
        spec = plan(preset).spec
        key = (spec.family, spec.classifier.kind, spec.classifier.aux and spec.classifier.aux.kind)
        best = chosen.get(key)
        if best is None or plan(preset).total_params < plan(best).total_params:
            chosen[key] = preset
    return sorted(chosen.values())


FAMILY_PRESETS = smallest_of_each_family()


def test_every_family_is_covered():
    families = {plan(preset).spec.family for preset in CLASSIFIERS}
    assert {plan(preset).spec.family for preset in FAMILY_PRESETS} == families
    assert {"inception_v1", "inception_v3", "squeezenet1_1", "vgg16"} <= set(FAMILY_PRESETS)


def single_output_kwargs(preset: str) -> dict:
    """Turn the auxiliary classifiers off where a preset has them: one output to compare."""
    return {"include_aux": False} if plan(preset).spec.classifier.aux else {}


def batch(shape, seed):
    return np.random.default_rng(seed).standard_normal((2, *shape), dtype=np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("preset", FAMILY_PRESETS)
def test_head_switches_of_every_family(preset, style):
    """At the small input and at most two blocks per group (conftest.shallow, from the
    style's own metaparameters): the switches act on the learner's last feature maps,
    whose width and stride the cut keeps, and Inception keeps its blocks up to the last
    auxiliary tap."""
    shape = small_input(preset)
    x = batch(shape, seed=5)
    meta = shallow(default_metaparameters(preset, style))

    def make(**kwargs):
        return build(preset, style, metaparameters=meta, input_shape=shape, **kwargs)

    # include_top=False: the learner's feature maps, no classifier or auxiliary layers; by
    # default at any input size (a resizing pre-stem resizes to the input_shape it is given).
    pre_stem = plan(preset).spec.pre_stem
    if pre_stem is not None and pre_stem.takes_any_size:
        features = make(include_top=False)
    else:
        features = build(preset, style, metaparameters=meta, include_top=False)
        assert tuple(features.input_shape) == (None, None, None, shape[2])
    assert len(features.outputs) == 1
    assert len(features.output.shape) == 4
    channels = features.output.shape[-1]
    heads = [layer.name for layer in features.layers if isinstance(layer, keras.layers.Dense)]
    assert not heads, f"{preset}: dense layers without the top: {heads}"
    assert not any(layer.name.startswith(("aux", "predictions")) for layer in features.layers)
    maps = np.asarray(features(x, training=False))

    # pooling reduces those same maps to one vector per image.
    for pooling, reduce, layer_type in (
        ("avg", np.mean, keras.layers.GlobalAveragePooling2D),
        ("max", np.max, keras.layers.GlobalMaxPooling2D),
    ):
        with cheap_initial_values():  # its weights are the features model's, set below
            pooled = make(include_top=False, pooling=pooling)
        assert tuple(pooled.output.shape) == (None, channels), pooling
        assert isinstance(pooled.layers[-1], layer_type), pooling
        pooled.set_weights(features.get_weights())
        got = np.asarray(pooled(x, training=False))
        diff = float(np.max(np.abs(got - reduce(maps, axis=(1, 2)))))
        assert diff < 1e-4, f"{preset} ({style}) pooling={pooling}: {diff:.3g}"

    if plan(preset).heads:  # classifier.heads: a dict of outputs, sized by metaparameters
        check_named_heads(preset, style, shape, x, meta)
        return

    # The top: the preset's classes by default (1000, ImageNet's, for most), softmax by
    # default, in the layer named "predictions" (keras.applications' name); n_classes of
    # them when given, raw scores with activation None.
    one = single_output_kwargs(preset)
    default = make(**one)
    assert tuple(default.output.shape) == (None, plan(preset).spec.n_classes)
    assert default.layers[-1].name == "predictions", default.layers[-1].name
    probabilities = np.asarray(default(x, training=False))
    assert np.allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    assert np.all(probabilities >= 0)

    image = keras.Input(shape=shape)  # input_tensor: the image input is this tensor
    logits_model = build(
        preset, style, metaparameters=meta, input_tensor=image, n_classes=7,
        classifier_activation=None, **one,
    )  # fmt: skip
    assert logits_model.inputs[0] is image
    assert tuple(logits_model.output.shape) == (None, 7)
    assert logits_model.layers[-1].name == "predictions"
    logits = np.asarray(logits_model(x, training=False))
    assert not np.allclose(logits.sum(axis=-1), 1.0), f"{preset}: a softmax was applied"

    # With its auxiliary classifiers on, every output follows n_classes and the activation;
    # where the input is too small for them (the plan says so), the build says so too.
    if one:
        try:
            plan_for(preset, [f"input_shape={list(shape)}", "classifier.aux.include=true"])
        except SpecError:
            with pytest.raises(ValueError, match="needs a tap of at least"):
                make(include_aux=True)
            return
        both = make(n_classes=7, include_aux=True)
        outputs = as_outputs(both(x, training=False))
        assert len(outputs) == 1 + plan(preset).n_taps
        for out in outputs:
            assert tuple(out.shape) == (2, 7)
            assert np.allclose(np.asarray(out).sum(axis=-1), 1.0, atol=1e-5)


def check_named_heads(preset, style, shape, x, meta):
    """The top of a multi-output classifier: one output per head, each with its width and
    activation; a metaparameters["heads"] override resizes them like n_classes does."""
    outputs = as_outputs(build(preset, style, metaparameters=meta, input_shape=shape)(x))
    heads = plan(preset).heads
    assert [tuple(out.shape) for out in outputs] == [(2, head.n_classes) for head in heads]
    for out, head in zip(outputs, heads, strict=True):
        sums = np.asarray(out).sum(axis=-1)
        assert np.allclose(sums, 1.0, atol=1e-5) == (head.activation == "softmax"), head
    heads = [{"name": "a", "n_classes": 7, "activation": "sigmoid"}]
    resized = build(preset, style, input_shape=shape, metaparameters={**meta, "heads": heads})
    (out,) = as_outputs(resized(x))
    assert tuple(out.shape) == (2, 7)


def head_arguments(preset: str, kwargs: dict) -> dict:
    """n_classes for a single classifier; for classifier.heads, the same size in a head."""
    if not plan(preset).heads or "n_classes" not in kwargs:
        return kwargs
    heads = [{"name": "a", "n_classes": kwargs["n_classes"], "activation": "softmax"}]
    return {"metaparameters": {"heads": heads}}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("preset", FAMILY_PRESETS)
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pooling": "bogus"}, "pooling"),
        ({"include_top": True, "pooling": "avg"}, "pooling"),
        ({"n_classes": 0}, "n_classes"),
        ({"n_classes": "10"}, "n_classes"),
    ],
    ids=["bogus-pooling", "top-with-pooling", "zero-classes", "string-classes"],
)
def test_bad_head_arguments_raise_before_building(preset, style, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(preset, style, input_shape=small_input(preset), **head_arguments(preset, kwargs))
