"""keras.applications' conventions in the emitted classifiers: `weights=` (None, a path,
"imagenet"), `input_tensor=`, and a free input size without the top.

The "imagenet" loading code runs offline: a test writes a weights file into the Keras
cache (a temporary one) under the published file's name, as keras.utils.get_file would
have fetched it, and the emitted file loads it by layer name; a file whose hash is not the
expected one is refused (with the origin pointed at a missing file, so that nothing is
fetched even where there is a network).
"""

import hashlib
import importlib.util
import re
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from conftest import PRESETS, STYLES, architecture, build, golden_path, load_golden, plan
from keras.src.backend import config as keras_config
from keras.src.legacy.saving import legacy_h5_format

from generator.pipeline import plan_for
from generator.pretrained import PUBLISHED

CLASSIFIERS = [preset for preset in PRESETS if architecture(preset) == "classifier"]
SMALL = (64, 64, 3)


def keras_applications_source(url: str) -> str:
    """The keras.applications module that publishes the file at that url."""
    folder = url.split("/keras-applications/")[1].split("/")[0]
    module = {"resnet": "resnet", "densenet": "densenet"}.get(folder, folder)
    found = importlib.util.find_spec(f"keras.src.applications.{module}")
    return Path(found.origin).read_text(encoding="utf-8")


def test_the_published_files_are_keras_applications():
    """Each address and MD5 hash in generator/pretrained.py is the one keras.applications
    fetches for that network (read from its installed sources)."""
    assert len(PUBLISHED) == 13
    for network, published in PUBLISHED.items():
        for url, md5 in (published.top, published.notop):
            source = keras_applications_source(url)
            name = url.rsplit("/", 1)[1]
            stem = name.split("_weights_")[0]
            assert md5 in source, (network, md5)
            # the file's name, whole or as the resnet module builds it from the stem
            assert name in source or f'"{stem}": (' in source, (network, name)
            folder = url.split("/keras-applications/")[1].rsplit("/", 1)[0]
            assert f"keras-applications/{folder}/" in source.replace('"\n    "', ""), url
        assert plan(published.preset).spec.reference == network


def test_imagenet_is_offered_where_the_backbone_is_the_networks():
    """weights="imagenet" where the spec's reference is a published network and its
    backbone that network's (any input size, any number of classes); not for another
    backbone under the same reference, nor for the other presets."""
    offered = {preset for preset in CLASSIFIERS if plan(preset).published_weights}
    assert offered == {published.preset for published in PUBLISHED.values()}
    assert plan_for("resnet50", ["n_classes=10", "input_shape=[96,96,3]"]).published_weights
    assert plan_for("resnet50", ["learner.groups.0.n_blocks=2"]).published_weights is None
    assert plan_for("vgg16", ["input_shape=[64,64,1]"]).published_weights is None
    for preset in CLASSIFIERS:
        for style in STYLES:
            text = golden_path(preset, style).read_text(encoding="utf-8")
            assert ("IMAGENET_WEIGHTS = {" in text) == (preset in offered), (preset, style)
            assert re.search(r"\n +weights=None,\n", text), (preset, style)
            assert re.search(r"\n +input_tensor=None,\n", text), (preset, style)


@pytest.mark.parametrize("style", STYLES)
def test_weights_from_a_path_and_the_errors(style, tmp_path):
    """A .weights.h5 file saved from a model of the file loads into a new one; a file that
    does not fit, a missing file, "imagenet" where none is published and a weights value
    that is no path are each one ValueError."""
    source = build("resnet18", style, input_shape=SMALL, n_classes=10)
    source.get_layer("predictions").bias.assign(np.arange(10, dtype="float32"))
    path = tmp_path / "resnet18.weights.h5"
    source.save_weights(path)
    loaded = build("resnet18", style, input_shape=SMALL, n_classes=10, weights=str(path))
    for saved, restored in zip(source.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(restored))
    with pytest.raises(ValueError, match="do not load into this model"):
        build("resnet18", style, input_shape=SMALL, n_classes=7, weights=str(path))
    with pytest.raises(ValueError, match="do not load into this model"):
        build("resnet18", style, input_shape=SMALL, weights=str(tmp_path / "none.weights.h5"))
    for wrong in ("imagenet", 3):
        with pytest.raises(ValueError, match="no ImageNet weights are published"):
            build("resnet18", style, input_shape=SMALL, weights=wrong)


def write_legacy_weights(model, path: Path) -> str:
    """The model's weights in the legacy .h5 layout keras.applications publishes (layer
    names, then each layer's weights); returns the file's MD5."""
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_imagenet_weights_load_from_the_keras_cache_and_a_wrong_hash_is_refused(
    tmp_path, monkeypatch
):
    """VGG16 without its top (its fewest layers): a file the test writes into the Keras
    cache under the published name loads by layer name in both styles; the same file
    under the published hash (not its own) is refused, and the model is not built."""
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path / "keras"))
    published = PUBLISHED["keras.applications.VGG16"]
    url, real_md5 = published.notop
    cached = tmp_path / "keras" / "models" / url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    source = build("vgg16", "procedural", include_top=False)
    for index, variable in enumerate(source.weights):  # distinct from any initial weights
        variable.assign(np.full(variable.shape, index / 100, dtype="float32"))
    md5 = write_legacy_weights(source, cached)
    assert md5 != real_md5

    for style in STYLES:
        module = load_golden("vgg16", style)
        monkeypatch.setitem(module.IMAGENET_WEIGHTS, "notop", (url, md5))
        kwargs = dict(include_top=False, weights="imagenet", module=module)
        model = build("vgg16", style, **kwargs)
        assert tuple(model.input_shape) == (None, None, None, 3)  # any size without the top
        for saved, restored in zip(source.weights, model.weights, strict=True):
            assert saved.path == restored.path
            np.testing.assert_array_equal(np.asarray(saved), np.asarray(restored))

        # The published hash, which this file does not have: get_file fetches it again
        # from the origin (here a missing file, so nothing is fetched) and fails.
        missing = (tmp_path / "nowhere" / cached.name).as_uri()
        monkeypatch.setitem(module.IMAGENET_WEIGHTS, "notop", (missing, real_md5))
        with pytest.raises(Exception, match="URL fetch failure"):
            build("vgg16", style, **kwargs)
        if not cached.exists():  # get_file may drop the file it refused
            write_legacy_weights(source, cached)

    module = load_golden("vgg16", "procedural")
    with pytest.raises(ValueError, match="n_classes=1000"):
        module.build_model(weights="imagenet", n_classes=10)
    with pytest.raises(ValueError, match="input_shape=\\(224, 224, 3\\)"):
        module.build_model(weights="imagenet", input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="no metaparameters"):
        module.build_model(weights="imagenet", metaparameters={"dense_units": [64]})
    with pytest.raises(ValueError, match="3 channels"):
        module.build_model(weights="imagenet", include_top=False, input_shape=(None, None, 1))


@pytest.mark.parametrize("style", STYLES)
def test_input_tensor_and_the_free_input_size(style):
    """input_tensor is the image input; a tensor computed from an Input makes that Input
    the model's; without the top the default input is any size, with it the preset's."""
    image = keras.Input(shape=SMALL)
    model = build("resnet18", style, input_tensor=image, n_classes=5)
    assert model.inputs[0] is image and tuple(model.output.shape) == (None, 5)

    raw = keras.Input(shape=SMALL)
    scaled = keras.layers.Rescaling(1 / 255, name="scale")(raw)
    features = build("resnet18", style, input_tensor=scaled, include_top=False, pooling="avg")
    assert features.inputs[0] is raw and features.get_layer("scale")
    assert tuple(features(np.zeros((1, *SMALL), "float32")).shape) == (1, 512)

    free = build("resnet18", style, include_top=False)
    assert tuple(free.input_shape) == (None, None, None, 3)
    assert tuple(free(np.zeros((1, 80, 96, 3), "float32")).shape) == (1, 3, 3, 512)
    assert tuple(build("resnet18", style).input_shape) == (None, 224, 224, 3)
    with pytest.raises(ValueError, match="input_tensor must be a Keras tensor"):
        build("resnet18", style, input_tensor=np.zeros((1, *SMALL), "float32"))
