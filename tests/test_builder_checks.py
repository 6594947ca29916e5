"""The emitted builders check their arguments before building anything: build_model (and
the OOP __init__) of every golden file refuses a bad input_shape, n_classes or n_regions,
and every metaparameter entry of the wrong type or range, with a ValueError that names the
entry (`groups[1]['n_blocks'] must be a positive integer, got 0`).

The bad metaparameters are derived from each file's own defaults: every leaf of
METAPARAMETERS (nested groups, blocks, heads, lists) is replaced by values of other TYPES
(a bool where a count belongs, a float, a string, None, a list) and by values out of range
(0, negative, a dropout of 1, a compression of 0), one at a time. A check that is missing
lets the builder go on to Keras, which then fails somewhere inside (or, worse, builds a
model that ignores the entry): the test then sees no ValueError, or one that names no entry.
"""

from __future__ import annotations

import copy
import math

import pytest
from conftest import PRESETS, STYLES, architecture, build, default_metaparameters, small_kwargs

# Lists the builders accept empty (no dense layers, no auxiliary taps; no heads is refused
# by its own line, with include_top).
MAY_BE_EMPTY = {"dense_units", "aux_after", "heads"}


def leaves(value, path=()):
    """(path, value) for every entry below value: dict keys and list indexes."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*path, key), inner
            yield from leaves(inner, (*path, key))
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            yield (*path, index), inner
            yield from leaves(inner, (*path, index))


def label(path) -> str:
    """The entry's name as the builders write it: groups[1]['n_blocks']."""
    head, *rest = path
    return head + "".join(f"[{part!r}]" for part in rest)


def key_of(path) -> str:
    return next(part for part in reversed(path) if isinstance(part, str))


def bad_values(path, value) -> list:
    """Values of another type, or out of range, for the entry at path (default value)."""
    key = key_of(path)
    if isinstance(value, bool):
        return [1, "yes", None, [True]]
    if isinstance(value, int):
        return [True, False, 0, -3, 2.5, "4", None, [value]]
    if isinstance(value, float):
        common = [True, "0.5", None, math.nan, [value]]
        if key == "dropout":
            return [*common, -0.1, 1.0, 1]
        if key == "compression":
            return [*common, 0, 0.0, 1.5, -1]
        return [*common, 0, 0.0, -1.0]
    if isinstance(value, str):
        return [3, None, ["x"], True]
    if isinstance(value, dict):
        return [3, "x", [1]]
    if isinstance(value, list | tuple):
        bad = [3, "x", {"a": 1}, None]
        return bad if key in MAY_BE_EMPTY else [*bad, []]
    return []  # None (an Inception v3 group without a reduction block)


def replaced(defaults: dict, path, new) -> dict:
    """The metaparameters that replace the entry at path: its top-level entry, changed."""
    top = copy.deepcopy(defaults[path[0]])
    if len(path) == 1:
        return {path[0]: new}
    node = top
    for part in path[1:-1]:
        node = node[part]
    if isinstance(node, tuple):
        return {}
    node[path[-1]] = new
    return {path[0]: top}


def cases(preset: str, style: str):
    defaults = default_metaparameters(preset, style)
    for path, value in leaves(defaults):
        for new in bad_values(path, value):
            change = replaced(defaults, path, new)
            if change:
                yield label(path), change


def raises_naming(preset: str, style: str, name: str, metaparameters=None, **kwargs) -> None:
    arguments = {**small_kwargs(preset, metaparameters=metaparameters), **kwargs}
    with pytest.raises(ValueError) as info:
        build(preset, style, **arguments)
    assert name in str(info.value), (name, str(info.value))


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("preset", PRESETS)
def test_every_metaparameter_entry_is_checked(preset, style):
    """Each leaf of the defaults, given a value of another type or out of range: a
    ValueError naming that leaf, before any layer is built."""
    count = 0
    for name, change in cases(preset, style):
        raises_naming(preset, style, name, metaparameters=change)
        count += 1
    assert count > 5, preset


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("preset", PRESETS)
def test_empty_groups_and_bad_arguments_are_refused(preset, style):
    defaults = default_metaparameters(preset, style)
    top = "groups" if "groups" in defaults else "filters"  # the autoencoder's widths
    raises_naming(preset, style, top, metaparameters={top: []})
    raises_naming(preset, style, top, metaparameters={top: ()})
    # None is a classifier's default (its preset's size, or any size without the top)
    nothing = [] if architecture(preset) == "classifier" else [None]
    for shape in ((64, 64), (64, 64, 3, 1), 64, "64x64", *nothing, {"h": 64}):
        raises_naming(preset, style, "input_shape", input_shape=shape)
    for shape, index in (((0, 64, 3), 0), ((64, True, 3), 1), ((64, 64, 3.0), 2)):
        raises_naming(preset, style, f"input_shape[{index}]", input_shape=shape)
    raises_naming(preset, style, "input_shape[2]", input_shape=(64, 64, None))
    if architecture(preset) in ("autoencoder", "rcnn", "fast_rcnn", "faster_rcnn"):
        raises_naming(preset, style, "fixed input_shape", input_shape=(None, 64, 3))
    if "n_classes" in small_kwargs(preset):
        for n_classes in (True, 0, 2.5, "10", None):
            raises_naming(preset, style, "n_classes", n_classes=n_classes)
    if "n_regions" in small_kwargs(preset):
        for n_regions in (True, 0, 1.5):
            raises_naming(preset, style, "n_regions", n_regions=n_regions)


@pytest.mark.parametrize("preset", ["resnet18", "conv_autoencoder", "siamese_omniglot"])
def test_metaparameters_that_are_no_dict_are_refused(preset):
    for bad in ([("groups", [])], "groups", 3):
        with pytest.raises(ValueError, match="metaparameters must be a dict"):
            build(preset, "procedural", input_shape=(64, 64, 3), metaparameters=bad)


@pytest.mark.parametrize("style", STYLES)
def test_the_checks_accept_what_the_layers_take(style):
    """Tuples for lists, an int where a float belongs, None for any height and width:
    accepted, and the model builds (small)."""
    model = build(
        "densenet121",
        style,
        input_shape=(None, None, 3),
        n_classes=3,
        metaparameters={"groups": ({"n_blocks": 1},), "growth_rate": 4, "compression": 1},
    )
    assert model.output.shape == (None, 3)
    model = build(
        "squeezenet1_1",
        style,
        input_shape=(64, 64, 3),
        n_classes=3,
        metaparameters={"groups": [{"n_filters": (4,)}], "dropout": 0},
    )
    assert model.output.shape == (None, 3)
    model = build(
        "conv_autoencoder", style, input_shape=(16, 16, 1), metaparameters={"filters": (4, 2)}
    )
    assert model.output.shape == (None, 16, 16, 1)
