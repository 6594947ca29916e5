"""The README and the pages under docs/: every relative link leads to a file, every
`modelgen ...` line in the README's command list names a real command, every preset is in
the README's table, and each YAML spec shown in docs/spec.md that names itself validates."""

import re
from pathlib import Path

import pytest
import yaml
from conftest import PRESETS

from generator.cli import app
from generator.spec import validate

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_relative_links_lead_to_files(page):
    text = page.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.name}: {target} is not there"


def test_the_readme_command_list_names_real_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## What you can do", 1)[1].split("```", 2)[1]
    commands = {command.name or command.callback.__name__ for command in app.registered_commands}
    groups = {group.name for group in app.registered_groups}
    lines = [line for line in block.splitlines() if line.startswith("modelgen ")]
    assert len(lines) > 10
    for line in lines:
        word = line.split()[1]
        assert word in commands | groups | {"--version"}, line
    assert {"list", "show", "generate", "verify", "schema", "fields"} <= commands


def test_every_preset_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Presets", 1)[1].split("\n\n", 2)[1]
    cells = [row.split("|")[1] for row in table.splitlines()[2:]]
    names = {name.strip() for cell in cells for name in cell.split(",")}
    assert names == set(PRESETS)


def test_the_whole_specs_in_the_spec_page_validate():
    page = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    whole = [
        data
        for text in re.findall(r"```yaml\n(.*?)```", page, re.S)
        if isinstance(data := yaml.safe_load(text), dict) and "name" in data
    ]
    assert whole, "docs/spec.md shows no whole spec"
    for data in whole:
        validate(data, "docs/spec.md")


def test_the_spec_page_lists_every_registered_kind():
    """The example spec's comments list the kinds a field takes (stem, block, classifier
    with its own fields): exactly the registered ones, so a new piece cannot go unlisted."""
    from generator import registry

    page = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")

    def listed(field: str) -> list[str]:
        line = next(line for line in page.splitlines() if re.match(rf"\s*{field}:.*# ", line))
        return [kind.strip() for kind in line.split("# ", 1)[1].split(" | ")]

    assert set(listed("stem")) == {"none", *registry.STEMS}
    assert set(listed("block")) == set(registry.BLOCKS)
    described = {
        kind: ", ".join(arg for arg in piece.args) for kind, piece in registry.CLASSIFIERS.items()
    }
    assert set(listed("classifier")) == {
        f"{kind} (+ {args})" if args else kind for kind, args in described.items()
    }
