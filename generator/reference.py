"""The spec's field reference (docs/fields.md), written from its JSON Schema: the same
pydantic models that validate a spec, so the page cannot drift from them
(tests/test_reference.py holds the committed page to this output, as the golden test
holds the golden files to the templates). `modelgen fields` prints it.
"""

from __future__ import annotations

import json

from .spec import json_schema

HEADER = """# Spec field reference

Every field a spec (a preset's YAML, or your own) may set, section by section: its type,
its default and the values it takes. Written by `modelgen fields` from the models that
validate a spec (`modelgen schema` gives the same as JSON Schema, for editors); a test
holds this page to them. A section whose learner or architecture picks it says so.
`modelgen show PRESET` prints a preset's whole spec, defaults filled in.
"""


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(name: str) -> str:
    return f"[{name}](#{name.lower()})"


def _number(value) -> str:
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 10_000 else repr(value)


def _limits(node: dict) -> str:
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum", node.get("exclusiveMaximum"))
    if low is None and high is None:
        return ""
    left = "" if low is None else ("> " if "exclusiveMinimum" in node else ">= ") + _number(low)
    right = "" if high is None else ("< " if "exclusiveMaximum" in node else "<= ") + _number(high)
    return ", ".join(part for part in (left, right) if part)


def _type(node: dict) -> tuple[str, str]:
    """(type, allowed values) of a schema node, in words."""
    if "$ref" in node:
        return _anchor(_ref_name(node["$ref"])), ""
    if "const" in node:
        return "string", f"`{node['const']}`"
    if "enum" in node:
        return node.get("type", "string"), ", ".join(f"`{value}`" for value in node["enum"])
    for key in ("oneOf", "anyOf"):
        if key in node:
            options = [option for option in node[key] if option.get("type") != "null"]
            nullable = len(options) < len(node[key])
            if "discriminator" in node and key == "anyOf":
                options = node[key][0].get("oneOf", options)
            words = [_type(option) for option in options]
            text = " or ".join(dict.fromkeys(word for word, _ in words))
            allowed = "; ".join(limit for _, limit in words if limit)
            return text + (" or null" if nullable else ""), allowed
    kind = node.get("type")
    if kind == "array":
        if "prefixItems" in node:
            parts = [_type(item) for item in node["prefixItems"]]
            limits = [limit for _, limit in parts]
            if len(set(limits)) == 1:
                allowed = f"each {limits[0]}" if limits[0] else ""
            else:
                allowed = "; ".join(f"#{n}: {limit}" for n, limit in enumerate(limits, 1) if limit)
            return "[" + ", ".join(word for word, _ in parts) + "]", allowed
        word, limit = _type(node.get("items", {}))
        size = ""
        if "minItems" in node or "maxItems" in node:
            size = f"{node.get('minItems', 0)} to {node.get('maxItems', 'any')} entries"
        return f"list of {word}", "; ".join(part for part in (size, limit) if part)
    if kind == "string":
        limit = f"at most {node['maxLength']:,} characters" if "maxLength" in node else ""
        return "string", limit
    return kind or "any", _limits(node)


def _default(name: str, node: dict, required: set) -> str:
    if name in required:
        return "required"
    if "default" not in node:
        return ""
    return f"`{json.dumps(node['default'])}`"


def _refs(node) -> list[str]:
    """The $defs a node names, in order."""
    found: list[str] = []
    if isinstance(node, dict):
        if "$ref" in node:
            found.append(_ref_name(node["$ref"]))
        for key, value in node.items():
            if key != "discriminator":
                found += _refs(value)
    elif isinstance(node, list):
        for value in node:
            found += _refs(value)
    return found


def _table(model: dict) -> list[str]:
    required = set(model.get("required", []))
    rows = ["| field | type | default | values |", "|---|---|---|---|"]
    for name, node in sorted(model.get("properties", {}).items()):
        word, allowed = _type(node)
        cells = [f"`{name}`", word, _default(name, node, required), allowed]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return rows


def field_reference() -> str:
    """docs/fields.md: the top level, then every section, in the order the top level first
    names them (breadth first), each with where it appears."""
    schema = json.loads(json_schema())
    defs = schema["$defs"]
    order: list[str] = []
    used_in: dict[str, list[str]] = {}
    queue = [("spec", schema)]
    while queue:
        owner, model = queue.pop(0)
        for field, node in sorted(model.get("properties", {}).items()):
            for name in dict.fromkeys(_refs(node)):
                where = "the spec's" if owner == "spec" else f"{_anchor(owner)}'s"
                used_in.setdefault(name, []).append(f"{where} `{field}`")
                if name not in order:
                    order.append(name)
                    queue.append((name, defs[name]))
    lines = [HEADER, "## The spec", "", *_table(schema), ""]
    for name in order:
        model = defs[name]
        lines += [f"## {name}", ""]
        lines += [f"Used in {', '.join(dict.fromkeys(used_in[name]))}.", ""]
        description = " ".join(model.get("description", "").split())
        if description:
            lines += [description, ""]
        lines += [*_table(model), ""]
    return "\n".join(lines).rstrip("\n") + "\n"
