"""The registry (generator/registry.py): every piece is declared once, complete, and every
list that enumerates pieces is derived from it."""

import re
import typing
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import PRESETS, plan

from generator import registry
from generator.render import templates_dir
from generator.spec import AuxClassifier, Classifier, Spec, Stem

ROOT = Path(__file__).resolve().parents[1]


def test_every_registered_piece_is_complete():
    assert registry.problems(templates_dir()) == []


@pytest.mark.parametrize(
    "table, key, change, problem",
    [
        (registry.BLOCKS, "bottleneck", {"templates": ("groups/nope.py.j2",)}, "is not in"),
        (registry.BLOCKS, "vgg", {"plan_group": None}, "no planner"),
        (registry.BLOCKS, "dense", {"layer_names": ()}, "no layer names"),
        (registry.BLOCKS, "fire", {"layer_names": ("fire(",)}, "layer-name pattern"),
        (registry.STEMS, "resnet", {"template": "stems/nope.py.j2"}, "is not in"),
        (registry.STEMS, "squeezenet", {"plan": None}, "no planner"),
        (registry.CLASSIFIERS, "flatten", {"layer_names": ()}, "no layer names"),
        (registry.AUX, "inception_v3", {"template": "nope.j2"}, "is not in"),
        (registry.ARCHITECTURES, "siamese", {"plan": None}, "no planner"),
    ],
)
def test_an_incomplete_piece_is_reported(table, key, change, problem):
    broken = replace(table[key], **change)
    lines = registry.piece_problems(broken, templates_dir())
    assert lines and all(problem in line or "no " in line for line in lines), lines
    assert any(problem in line for line in lines), lines


def test_a_piece_registers_once():
    with pytest.raises(ValueError, match="registered twice"):
        registry.register_stem(**vars(registry.STEMS["resnet"]))


def _literal(annotation) -> tuple:
    for inner in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(inner) is typing.Literal:
            return typing.get_args(inner)
    raise AssertionError(f"no Literal in {annotation}")


def test_the_spec_choices_are_the_registry():
    fields = Spec.model_fields
    assert _literal(fields["architecture"].annotation) == tuple(registry.ARCHITECTURES)
    assert _literal(Stem.model_fields["kind"].annotation) == tuple(registry.STEMS)
    assert _literal(Classifier.model_fields["kind"].annotation) == tuple(registry.CLASSIFIERS)
    assert _literal(AuxClassifier.model_fields["kind"].annotation) == tuple(registry.AUX)
    tags = [
        tag
        for model in registry.learner_models()
        for tag in _literal(model.model_fields["block"].annotation)
    ]
    assert tags == list(registry.BLOCKS)
    # Each architecture's own section is a Spec field; no other optional section exists.
    own = {arch.section[0] for arch in registry.ARCHITECTURES.values() if arch.section}
    assert own | {"learner", "classifier"} == set(registry.sections())
    assert own <= set(fields)


def test_every_preset_uses_registered_pieces_and_existing_templates():
    used = {"blocks": set(), "stems": set(), "architectures": set()}
    for preset in PRESETS:
        p = plan(preset)
        for name in p.templates:
            assert (templates_dir() / name).is_file(), (preset, name)
        used["architectures"].add(p.spec.architecture)
        if p.block is not None:
            used["blocks"].add(p.spec.learner.block)
            used["stems"].add(p.spec.stem.kind)
    # Every registered piece has a preset (so the golden tests render it).
    assert used["architectures"] == set(registry.ARCHITECTURES)
    assert used["blocks"] == set(registry.BLOCKS)
    assert used["stems"] == set(registry.STEMS)


def test_no_hand_kept_list_of_pieces_outside_the_registry():
    """The tags live in their piece modules: no other source file spells out a list of
    them (a tuple or list literal holding two or more registered names of one table)."""
    tables = {
        "block tags": set(registry.BLOCKS),
        "stem kinds": set(registry.STEMS),
        "classifier kinds": set(registry.CLASSIFIERS),
        "architectures": set(registry.ARCHITECTURES),
    }
    sources = [
        *sorted((ROOT / "generator").glob("*.py")),
        *sorted((ROOT / "benchmarks").glob("*.py")),
        ROOT / "tests" / "conftest.py",
    ]
    literal = re.compile(r"[(\[{]\s*((?:\"[a-z0-9_]+\"\s*,\s*){1,}\"[a-z0-9_]+\"\s*,?)\s*[)\]}]")
    found = []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for match in literal.finditer(text):
            names = set(re.findall(r"\"([a-z0-9_]+)\"", match.group(1)))
            for what, table in tables.items():
                if len(names & table) >= 2:
                    found.append(f"{path.relative_to(ROOT)}: {what} {sorted(names & table)}")
    assert found == []


def test_detectors_and_tasks_are_derived():
    assert registry.detectors() == tuple(
        name for name, arch in registry.ARCHITECTURES.items() if arch.is_detector
    )
    from generator.harness import TASKS, task_for_plan

    for preset in PRESETS:  # every preset's task kind has a batch maker
        assert task_for_plan(plan(preset))["kind"] in TASKS, preset
