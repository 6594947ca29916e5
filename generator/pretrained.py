"""Published ImageNet weights an emitted classifier can load (its `weights="imagenet"`).

keras.applications publishes one weight file with the classifier on top and one without
for each network below; these are their addresses and MD5 hashes (facts from the
keras.applications sources, which tests/test_weights.py holds this table to). A spec gets
`weights="imagenet"` when its reference is one of these networks and its backbone is the
preset's that builds that network (the same stem, learner, conventions and classifier
layers; the input size and the number of classes may differ: without the top the file
carries no classifier). Its layer names are then that network's (the preset's tests check
they load keras.applications' weights by name), so the file's weights load by name.
"""

from dataclasses import dataclass
from functools import cache

from .spec import Spec, load_spec

_STORAGE = "https://storage.googleapis.com/tensorflow/keras-applications"


@dataclass(frozen=True)
class Published:
    """One network's two published files: (url, md5) with the top and without it."""

    network: str  # keras.applications.ResNet50
    preset: str  # the preset that builds it
    top: tuple[str, str]
    notop: tuple[str, str]


def _files(folder: str, stem: str, top_md5: str, notop_md5: str) -> dict:
    base = f"{_STORAGE}/{folder}/{stem}_weights_tf_dim_ordering_tf_kernels"
    return {"top": (f"{base}.h5", top_md5), "notop": (f"{base}_notop.h5", notop_md5)}


_TABLE = {
    # network: (preset, folder, file stem, md5 with the top, md5 without)
    "ResNet50": ("resnet50", "resnet", "resnet50", "2cb95161c43110f7111970584f804107",
                 "4d473c1dd8becc155b73f8504c6f6626"),
    "ResNet101": ("resnet101", "resnet", "resnet101", "f1aeb4b969a6efcfb50fad2f0c20cfc5",
                  "88cf7a10940856eca736dc7b7e228a21"),
    "ResNet152": ("resnet152", "resnet", "resnet152", "100835be76be38e30d865e96f2aaae62",
                  "ee4c566cf9a93f14d82f913c2dc6dd0c"),
    "ResNet50V2": ("resnet50_v2", "resnet", "resnet50v2", "3ef43a0b657b3be2300d5770ece849e0",
                   "fac2f116257151a9d068a22e544a4917"),
    "ResNet101V2": ("resnet101_v2", "resnet", "resnet101v2",
                    "6343647c601c52e1368623803854d971", "c0ed64b8031c3730f411d2eb4eea35b5"),
    "ResNet152V2": ("resnet152_v2", "resnet", "resnet152v2",
                    "a49b44d1979771252814e80f8ec446f9", "ed17cf2e0169df9d443503ef94b23b33"),
    "VGG16": ("vgg16", "vgg16", "vgg16", "64373286793e3c8b2b4e3219cbf3544b",
              "6d6bbae143d832006294945121d1f1fc"),
    "VGG19": ("vgg19", "vgg19", "vgg19", "cbe5617147190e668d6c5d5026f83318",
              "253f8cb515780f3b799900260a226db6"),
    "DenseNet121": ("densenet121", "densenet", "densenet121",
                    "9d60b8095a5708f2dcce2bca79d332c7", "30ee3e1110167f948a6b9946edeeb738"),
    "DenseNet169": ("densenet169", "densenet", "densenet169",
                    "d699b8f76981ab1b30698df4c175e90b", "b8c4d4c20dd625c148057b9ff1c1176b"),
    "DenseNet201": ("densenet201", "densenet", "densenet201",
                    "1ceb130c1ea1b78c3bf6114dbdfd8807", "c13680b51ded0fb44dff2d8f86ac8bb1"),
    "InceptionV3": ("inception_v3", "inception_v3", "inception_v3",
                    "9a0d58056eeedaa3f26cb7ebd46da564", "bcbd6486424b2319ff4ef7d526e38f63"),
    "Xception": ("xception", "xception", "xception", "0a58e3b7378bc2990ea3b43d5981f1f6",
                 "b0042744bf5b25fce3cb969f33bebb97"),
}  # fmt: skip

PUBLISHED: dict[str, Published] = {
    f"keras.applications.{network}": Published(
        f"keras.applications.{network}", preset, **_files(folder, stem, top, notop)
    )
    for network, (preset, folder, stem, top, notop) in _TABLE.items()
}


def _backbone(spec: Spec) -> dict:
    """What the published file's layers depend on: everything but the names, the text,
    the input's height and width, the number of classes and the auxiliary classifiers
    (keras.applications has none; with include_aux they start untrained)."""
    dump = spec.model_dump(
        exclude={"name", "class_name", "title", "family", "description", "citation",
                 "n_classes", "input_shape"},
    )  # fmt: skip
    classifier = dump.get("classifier")
    if isinstance(classifier, dict):
        classifier.pop("aux", None)
    dump["channels"] = spec.input_shape[2]
    return dump


@cache
def _preset_backbone(preset: str) -> dict:
    return _backbone(load_spec(preset)[0])


def keras_builder(reference: str) -> tuple[str, dict]:
    """The keras.applications builder a reference names and the arguments it gives it:
    "keras.applications.MobileNet(alpha=0.75)" -> ("MobileNet", {"alpha": 0.75})."""
    import ast

    text = reference.removeprefix("keras.applications.")
    call = ast.parse(text, mode="eval").body
    if isinstance(call, ast.Name):
        return call.id, {}
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and not call.args):
        raise ValueError(f"{reference!r} is not keras.applications.Name(keyword=value, ...)")
    return call.func.id, {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


@cache
def _reference_presets() -> dict[str, str]:
    """keras.applications network -> the preset that builds it (its spec.reference)."""
    from .spec import preset_names

    found = {}
    for name in preset_names():
        reference = load_spec(name)[0].reference
        if reference.startswith("keras.applications."):
            found.setdefault(reference, name)
    return found


def builds_reference(spec: Spec) -> bool:
    """Whether the spec builds its keras.applications reference's network: the backbone
    of the preset that names that reference (up to the names, the input's height and
    width and the classes), so that network's layer names and weight shapes are its."""
    preset = _reference_presets().get(spec.reference) if spec.keras_reference else None
    if preset is None or spec.architecture != "classifier":
        return False
    return _backbone(spec) == _preset_backbone(preset)


def published_for(spec: Spec) -> Published | None:
    """The published weights this spec's classifier can load, or None."""
    published = PUBLISHED.get(spec.reference)
    if published is None or spec.architecture != "classifier":
        return None
    if _backbone(spec) != _preset_backbone(published.preset):
        return None
    return published
