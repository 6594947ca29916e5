"""docs/fields.md, the spec's field reference, is `modelgen fields`'s output: written from
the models that validate a spec, and every field of every section is on it."""

import json
import re
from pathlib import Path

from generator.cli import main
from generator.reference import field_reference
from generator.spec import json_schema

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "fields.md"


def test_the_committed_page_is_the_current_reference():
    """Like the golden files: a changed spec model changes the page; regenerate it with
    `modelgen fields -o docs/fields.md --force`."""
    assert PAGE.read_text(encoding="utf-8") == field_reference(), (
        "docs/fields.md is stale: run `modelgen fields -o docs/fields.md --force`"
    )


def test_every_section_and_field_is_on_the_page():
    schema = json.loads(json_schema())
    page = field_reference()
    sections = re.split(r"\n## ", page)
    tables = {part.split("\n", 1)[0]: part for part in sections[1:]}
    assert set(tables) == {"The spec", *schema["$defs"]}
    for name, model in [("The spec", schema), *schema["$defs"].items()]:
        for field in model.get("properties", {}):
            assert f"\n| `{field}` |" in tables[name], (name, field)
    # a bound and a kind's choices, as a user looks them up
    assert '| `kind` | string | `"none"` | `inception_v1`, `inception_v3`, `none`' in page
    assert "`n_classes` | integer or null | `null` | >= 1, <= 1,000,000 |" in page


def test_modelgen_fields_prints_it(capsys):
    assert main(["fields"]) == 0
    assert capsys.readouterr().out == field_reference()
