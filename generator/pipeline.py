"""The generate path in one place: spec -> validate -> plan -> render -> format."""

from __future__ import annotations

from pathlib import Path

from .plan import Plan, make_plan
from .render import render
from .spec import load_spec, preset_names
from .sync import recorded_target


def origin_label(target: str, source: str) -> str:
    """What the DO NOT EDIT header says the file came from."""
    if target in preset_names() and source == target:
        return f'preset "{target}"'
    return f'spec file "{Path(source).name}"'


def plan_for(target: str, overrides=(), allow_large: bool = False) -> Plan:
    spec, source = load_spec(target, list(overrides))
    return make_plan(spec, source, allow_large=allow_large)


def generate(target: str, style: str, overrides=(), allow_large: bool = False, output=None) -> str:
    """A preset name or spec file (+ --set overrides) -> the emitted file's text. With
    output (the file it goes to), a spec path is recorded in the header relative to that
    file's folder (sync.recorded_target): the same bytes from any working folder."""
    spec, source = load_spec(target, list(overrides))
    if source != target and source in preset_names():  # ResNet18: the preset resnet18
        target = source
    plan = make_plan(spec, source, allow_large=allow_large)
    return render(
        plan,
        style,
        origin_label(target, source),
        target,
        overrides,
        allow_large=allow_large,
        command_target=recorded_target(target, output) if source == target else None,
    )
