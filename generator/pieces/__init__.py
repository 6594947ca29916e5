"""Every piece of a network, one module each; importing this package registers them all
(see generator/registry.py). MODULES is the order of registration, and so the order of the
spec's unions, Literals and sections (and of the choices its error lines list)."""

from __future__ import annotations

import importlib

MODULES = (
    "blocks.plain",
    "blocks.vgg",
    "blocks.residual",
    "blocks.dense",
    "blocks.fire",
    "blocks.inception_v1",
    "blocks.inception_v3",
    "stems.resnet",
    "stems.squeezenet",
    "stems.inception",
    "classifiers",
    "architectures.classifier",
    "architectures.siamese",
    "architectures.autoencoder",
    "architectures.detectors",
)

for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")
