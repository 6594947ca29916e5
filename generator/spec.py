"""Spec: load a preset or a user's YAML file, apply --set overrides, validate.

A spec chooses STRUCTURE (stem kind, block type, where the stride sits, classifier kind,
framework conventions) and SIZES (groups, filters, blocks, dense units). Validation is
pydantic v2; every problem becomes one `SpecError` line naming the field path.
"""

from __future__ import annotations

import difflib
import keyword
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import SpecError

PRESETS_DIR = Path(__file__).parent / "presets"

# Sizes a spec may ask for. Generous, but they keep a typo from asking for a
# petabyte model or a Python int that Keras cannot hold.
MAX_FILTERS = 65536
MAX_BLOCKS = 1024
MAX_IMAGE_SIDE = 8192

Filters = Annotated[StrictInt, Field(ge=1, le=MAX_FILTERS)]
Count = Annotated[StrictInt, Field(ge=1, le=MAX_BLOCKS)]
Side = Annotated[StrictInt, Field(ge=1, le=MAX_IMAGE_SIDE)]
Stride = Annotated[StrictInt, Field(ge=1, le=8)]
Rate = Annotated[float, Field(ge=0.0, lt=1.0, strict=True)]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Text that lands in a docstring or comment: printable, no way to close the string.
_UNSAFE_TEXT = re.compile(r'("""|\\|[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\x85]|\{\{|\{%|\{#)')


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value) or keyword.iskeyword(value):
        raise ValueError(f"must be a Python identifier (letters, digits, _), got {value!r}")
    return value


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line")
    return _safe_text(value)


def _safe_text(value: str) -> str:
    bad = _UNSAFE_TEXT.search(value)
    if bad:
        raise ValueError(f"must not contain {bad.group(0)!r} (it would end up in Python source)")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Conventions(_Model):
    """Framework conventions that change layers but not the pattern."""

    # keras.applications' ResNet v1 puts a bias on convolutions that feed a
    # BatchNormalization; torchvision does not. Convolutions that do not feed a BN
    # always have a bias.
    bias_before_bn: StrictBool = False
    bn_epsilon: float = Field(1e-5, gt=0.0, lt=1.0, strict=True)


class Stem(_Model):
    """none: the first group sees the pixels (VGG). resnet: 7x7/2 conv -> BN -> ReLU -> 3x3/2
    max pool. resnet_preact: the same without BN-ReLU (pre-activation blocks normalise)."""

    kind: Literal["none", "resnet", "resnet_preact"] = "none"
    n_filters: Filters = 64


class VGGGroup(_Model):
    n_filters: Filters
    n_layers: Count


class ResidualGroup(_Model):
    n_filters: Filters
    n_blocks: Count
    strides: Stride = 1


class VGGLearner(_Model):
    block: Literal["vgg"]
    groups: list[VGGGroup] = Field(min_length=1, max_length=64)


class ResidualLearner(_Model):
    block: Literal["basic", "bottleneck", "preact_bottleneck"]
    # bottleneck only (default 1x1): v1 strides the first 1x1, v1.5 strides the 3x3.
    stride_on: Literal["1x1", "3x3"] | None = None
    groups: list[ResidualGroup] = Field(min_length=1, max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _bottleneck_default(cls, data):
        if isinstance(data, dict) and data.get("block") == "bottleneck" and "stride_on" not in data:
            data = {**data, "stride_on": "1x1"}
        return data

    @model_validator(mode="after")
    def _stride_on_is_bottleneck_only(self):
        if self.block != "bottleneck" and self.stride_on is not None:
            raise ValueError(
                f"stride_on applies only to block 'bottleneck' ({self.block} blocks "
                "stride their first 3x3)"
            )
        return self


LEARNER_TAGS = ("vgg", "basic", "bottleneck", "preact_bottleneck")
Learner = Annotated[VGGLearner | ResidualLearner, Field(discriminator="block")]


class Classifier(_Model):
    """avg_pool: global average pool -> softmax (ResNet). flatten: flatten -> dense layers
    -> softmax (VGG)."""

    kind: Literal["avg_pool", "flatten"]
    dense_units: list[Filters] = Field(default_factory=list, max_length=8)
    dropout: Rate = 0.0

    @model_validator(mode="after")
    def _dense_needs_flatten(self):
        if self.kind == "avg_pool" and (self.dense_units or self.dropout):
            raise ValueError("dense_units and dropout apply only to classifier kind 'flatten'")
        return self


class Spec(_Model):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    # Derived from `name` when absent (my_net -> MyNet, family "custom", title = class).
    class_name: Annotated[str, Field(min_length=1, max_length=64)]
    family: Annotated[str, Field(min_length=1, max_length=64)] = "custom"
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=4000)] = ""
    citation: Annotated[str, Field(max_length=400)] = ""
    reference: Annotated[str, Field(max_length=200)] = ""
    input_shape: tuple[Side, Side, Annotated[StrictInt, Field(ge=1, le=4096)]]
    n_classes: Annotated[StrictInt, Field(ge=1, le=1_000_000)] = 1000
    conventions: Conventions = Conventions()
    stem: Stem = Stem()
    learner: Learner
    classifier: Classifier

    _name_is_identifier = field_validator("name", "class_name")(_identifier)
    _single_line = field_validator("family", "title", "citation", "reference")(_one_line)
    _safe_description = field_validator("description")(_safe_text)

    @model_validator(mode="before")
    @classmethod
    def _derive_names(cls, data):
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            if "class_name" not in data and _IDENTIFIER.match(data["name"]):
                camel = "".join(part[:1].upper() + part[1:] for part in data["name"].split("_"))
                data = {**data, "class_name": camel or data["name"]}
            if "title" not in data and isinstance(data.get("class_name"), str):
                data = {**data, "title": data["class_name"]}
        return data

    @field_validator("input_shape", mode="before")
    @classmethod
    def _list_is_fine(cls, value):
        return tuple(value) if isinstance(value, list) else value

    @property
    def keras_reference(self) -> bool:
        """Whether layer names follow a keras.applications model (weights load by name)."""
        return self.reference.startswith("keras.applications.")


# --------------------------------------------------------------------------- loading


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def _read_yaml(path: Path, source: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(source, "", "no such file") from None
    except IsADirectoryError:
        raise SpecError(source, "", "is a directory, not a spec file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(source, "", f"cannot read: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(source, where, f"invalid YAML: {problem}") from None


def load_raw(target: str) -> tuple[dict, str]:
    """A preset name or a path to a YAML spec -> (raw mapping, source label)."""
    if not target.isprintable() or not target:
        raise SpecError(repr(target), "", "a preset name or file path must be printable text")
    looks_like_file = target.endswith((".yaml", ".yml")) or "/" in target or "\\" in target
    if not looks_like_file:
        if target in preset_names():
            return _read_yaml(PRESETS_DIR / f"{target}.yaml", target), target
        if not Path(target).exists():
            close = difflib.get_close_matches(target, preset_names(), n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else "; `modelgen list` shows them"
            raise SpecError(target, "", f"unknown preset{hint}")
    data = _read_yaml(Path(target), target)
    if not isinstance(data, dict):
        raise SpecError(target, "", "a spec must be a YAML mapping of fields")
    return data, target


def apply_overrides(raw: dict, overrides: list[str], source: str) -> dict:
    """Apply `--set dotted.path=value` (value parsed as YAML) to a copy of the raw spec.

    `learner.groups.0.n_blocks=2` walks mappings by key and lists by index.
    """
    import copy

    data = copy.deepcopy(raw)
    for item in overrides:
        if not item.isprintable():
            raise SpecError(source, repr(item), "--set must be printable, single-line text")
        path, sep, text = item.partition("=")
        if not sep or not path:
            raise SpecError(source, item, "--set needs the form dotted.path=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise SpecError(source, path, f"--set value is not valid YAML: {text!r}") from None
        node: Any = data
        keys = path.split(".")
        for depth, key in enumerate(keys):
            last = depth == len(keys) - 1
            here = ".".join(keys[: depth + 1])
            if isinstance(node, list):
                if not key.isdigit() or int(key) >= len(node):
                    raise SpecError(source, here, f"no list item {key} (the list has {len(node)})")
                if last:
                    node[int(key)] = value
                else:
                    node = node[int(key)]
            elif isinstance(node, dict):
                if last:
                    node[key] = value
                elif key not in node:
                    raise SpecError(source, here, "no such field to set inside")
                else:
                    node = node[key]
            else:
                raise SpecError(source, here, "cannot set a field inside a plain value")
    return data


def _loc_to_path(loc: tuple) -> str:
    out = ""
    previous = None
    for part in loc:
        if previous == "learner" and part in LEARNER_TAGS:
            continue  # the discriminated union's tag, not a field the user wrote
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
        previous = part
    return out


def _reason(err: dict) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    if kind == "greater_than_equal":
        return f"must be >= {ctx['ge']}, got {shown}"
    if kind == "less_than_equal":
        return f"must be <= {ctx['le']}, got {shown}"
    if kind == "greater_than":
        return f"must be > {ctx['gt']}, got {shown}"
    if kind == "less_than":
        return f"must be < {ctx['lt']}, got {shown}"
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("literal_error", "union_tag_invalid"):
        expected = ctx.get("expected") or ctx.get("expected_tags")
        return f"must be one of {expected}, got {shown}"
    if kind == "union_tag_not_found":
        return f"missing the field {ctx.get('discriminator', 'block')} that picks the kind"
    if kind in ("too_short", "too_long"):
        bound = "at least" if kind == "too_short" else "at most"
        limit = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        return f"must have {bound} {limit} item(s), got {ctx.get('actual_length')}"
    if kind in ("string_too_short", "string_too_long"):
        return err["msg"].lower().replace("string should", "must") + f", got {shown}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    # int_type, float_type, bool_type, string_type, list_type, dict_type, model_type ...
    return f"{err['msg'][0].lower()}{err['msg'][1:]}, got {shown}"


def _suggest_field(err: dict, loc: tuple) -> str:
    """For an unknown key, name the closest allowed one."""
    parent = Spec
    for part in loc[:-1]:
        if isinstance(part, int) or part in LEARNER_TAGS:
            if part in LEARNER_TAGS:
                parent = VGGLearner if part == "vgg" else ResidualLearner
            continue
        info = parent.model_fields.get(part) if isinstance(parent, type) else None
        if info is None:
            return ""
        ann = info.annotation
        inner = getattr(ann, "__args__", None)
        candidates = [ann, *(inner or ())]
        parent = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if parent is None:
            return ""
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)):
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(parent.model_fields), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def validate(raw: Any, source: str) -> Spec:
    """Raw mapping -> Spec, or SpecError with one line per problem (field path + reason)."""
    if not isinstance(raw, dict):
        raise SpecError(source, "", "a spec must be a YAML mapping of fields")
    try:
        return Spec.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False)[:10]:
            loc = tuple(err["loc"])
            reason = _reason(err)
            if err["type"] == "extra_forbidden":
                reason += _suggest_field(err, loc)
            problems.append((_loc_to_path(loc), reason))
        (path, reason), *others = problems
        raise SpecError(source, path, reason, others) from None


def load_spec(target: str, overrides: list[str] | None = None) -> tuple[Spec, str]:
    """Preset name or file (+ overrides) -> validated Spec and the source label."""
    raw, source = load_raw(target)
    if overrides:
        raw = apply_overrides(raw, overrides, source)
    return validate(raw, source), source


def spec_to_yaml(spec: Spec) -> str:
    """The fully resolved spec (every default filled in) as YAML."""
    data = spec.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
