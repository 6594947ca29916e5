"""Render: plan -> Python source, through Jinja2 templates, then black.

Every piece template (a stem, the learner, a group, a block type, a classifier) is written
once and knows nothing of the style. It writes its functions with three helpers that the
style supplies:

    {{ def_method("stem", "x") }}      def stem(x):          | def stem(self, x):
    {{ def_static("group", "x, ...") }} def group(x, ...):    | @staticmethod def group(x, ...):
    {{ ref("group") }}                 group                 | ResNet50.group

The two skins (templates/skins/) only lay the pieces out: module-level functions plus
`build_model` (procedural), or one class whose methods and static factories they are (OOP).
"""

from __future__ import annotations

import ast
import re
import shlex
from functools import lru_cache
from pathlib import Path

import black
import jinja2

from . import __version__
from .errors import SpecError
from .plan import Plan
from .registry import STEMS
from .spec import Spec, _derive_class_name

STYLES = ("procedural", "oop")
_OPS_CALL = re.compile(r"(?<![\w.])ops\.")
BLACK_MODE = black.Mode(line_length=88, target_versions={black.TargetVersion.PY310})


def templates_dir() -> Path:
    """templates/ ships inside the wheel as generator/templates; a checkout has it beside."""
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "templates"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def regenerate_command(
    target: str, style: str, overrides: list[str], allow_large: bool = False
) -> str:
    words = ["modelgen", "generate", target, "--style", style]
    for item in overrides:
        words += ["--set", item]
    if allow_large:
        words.append("--allow-large")
    return " ".join(shlex.quote(w) for w in words)


def _style_helpers(style: str, class_name: str, prefix: str = "", own=frozenset()) -> dict:
    """def_method, def_static and ref for one style. Inside a scope (the group and block
    pieces of one block type, where a learner mixes block types) the functions the scope
    defines (`own`) carry its prefix, and so do the references to them."""
    oop = style == "oop"

    def scoped(name: str) -> str:
        return f"{prefix}{name}" if name in own else name

    def def_method(name: str, args: str) -> str:
        name = scoped(name)
        return f"def {name}(self, {args}):" if oop else f"def {name}({args}):"

    def def_static(name: str, args: str) -> str:
        name = scoped(name)
        return f"@staticmethod\ndef {name}({args}):" if oop else f"def {name}({args}):"

    def ref(name: str) -> str:
        name = scoped(name)
        return f"{class_name}.{name}" if oop else name

    return {"def_method": def_method, "def_static": def_static, "ref": ref}


def _defined_names(env: jinja2.Environment, names: list[str], context: dict) -> frozenset:
    """The functions these templates define (their def_static / def_method names)."""
    found: set[str] = set()

    def record(name: str, args: str) -> str:
        found.add(name)
        return ""

    helpers = {"def_static": record, "def_method": record, "ref": lambda name: name}
    for name in names:
        env.get_template(name).render({**context, **helpers})
    return frozenset(found)


def _render_pieces(env: jinja2.Environment, plan: Plan, style: str, context: dict) -> list[str]:
    """Each piece template rendered with the context, or, for a scoped piece, with its
    block type as `block` and its functions' names prefixed by the block type's tag."""
    scopes: dict[str, dict] = {}
    for _, block in plan.pieces:
        if block is not None and block.tag not in scopes:
            own_pieces = [piece for piece, scope in plan.pieces if scope is block]
            local = {**context, "block": block}
            own = _defined_names(env, own_pieces, local)
            helpers = _style_helpers(style, plan.spec.class_name, f"{block.tag}_", own)
            scopes[block.tag] = {**local, **helpers}
    return [
        env.get_template(name).render(scopes[block.tag] if block else context).strip("\n")
        for name, block in plan.pieces
    ]


def render_source(
    plan: Plan, style: str, origin: str, target: str, overrides=(), allow_large: bool = False
) -> str:
    """The unformatted source of the emitted file."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    spec = plan.spec
    env = environment()
    context = {
        "version": __version__,
        "origin": origin,
        "command": regenerate_command(target, style, list(overrides), allow_large),
        "spec": spec,
        "plan": plan,
        "block": plan.block,
        # what the stem function takes after x (StemKind.args), from METAPARAMETERS
        "stem_args": STEMS[spec.stem.kind].args,
        # keras' automatic names the stem took (StemKind.auto_names), by layer class
        "stem_auto_names": dict(STEMS[spec.stem.kind].auto_names),
        "style": style,
        "bias_before_bn": spec.conventions.bias_before_bn,
        "bn_epsilon": repr(spec.conventions.bn_epsilon),
        "bn_args": spec.conventions.bn_args,
        **_style_helpers(style, spec.class_name),
    }
    pieces = _render_pieces(env, plan, style, context)
    # keras.ops is imported where some piece calls it (a custom layer's call, a loss ...).
    uses_ops = any(_OPS_CALL.search(piece) for piece in pieces)
    skin = env.get_template(f"skins/{style}.py.j2")
    return skin.render(context, pieces=pieces, uses_ops=uses_ops)


def format_source(source: str) -> str:
    return black.format_str(source, mode=BLACK_MODE)


class UnsafeOutput(RuntimeError):
    """The rendered file failed modelgen's own check (see check_emitted). It is a modelgen
    bug, whatever the spec: the CLI reports an internal error and writes nothing."""


def _is_main_guard(node: ast.stmt) -> bool:
    """`if __name__ == "__main__":` with no else."""
    test = node.test if isinstance(node, ast.If) else None
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Eq)
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
        and not node.orelse
    )


def check_emitted(source: str, text: str) -> ast.Module:
    """Defence in depth for specs from strangers: the formatted file must keep, word for
    word, the docstring the templates wrote (black did not reflow spec text into code), and
    its top level may only hold that docstring, imports of keras, assignments
    (METAPARAMETERS, IMAGENET_WEIGHTS), function and class definitions and the __main__
    guard: importing it runs nothing else. Returns the parsed file."""
    tree = ast.parse(text)
    if ast.get_docstring(tree, clean=False) != ast.get_docstring(ast.parse(source), clean=False):
        raise UnsafeOutput("formatting changed the module docstring")
    for index, node in enumerate(tree.body):
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, ast.Import) and [a.name for a in node.names] == ["keras"]:
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "keras" and node.level == 0:
            continue
        if isinstance(node, (ast.Assign, ast.FunctionDef, ast.ClassDef)) or _is_main_guard(node):
            continue
        raise UnsafeOutput(f"unexpected top-level {type(node).__name__} at line {node.lineno}")
    return tree


# Nodes that bind or look up a name, and the fields that hold it. Attribute names
# (`layers.Conv2D`, `self.model`, `ResNet50.group`) and keyword arguments (`name=...`) are
# not names: no global can shadow them, so they are left out.
_NAME_FIELDS = {
    ast.Name: "id",
    ast.FunctionDef: "name",
    ast.AsyncFunctionDef: "name",
    ast.ClassDef: "name",
    ast.arg: "arg",
    ast.ExceptHandler: "name",
    ast.MatchAs: "name",
    ast.MatchStar: "name",
    ast.MatchMapping: "rest",
}


def emitted_names(tree: ast.Module, own_class: str | None = None) -> frozenset[str]:
    """Every name the file binds or looks up: variables, functions, classes, arguments and
    imported names, at any level. `own_class` is the file's model class (OOP): its own
    `class` statement at the top level and its lookups (`ResNet50.group`,
    `ResNet50().model`) are left out, so it shows up here only if something else in the
    file binds the same name, which is exactly when the class would shadow it or be shadowed.
    (A name the file looks up but binds nowhere is a builtin, `__name__`, or the class.)"""
    names: set[str] = set()
    own = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == own_class][:1]
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
        elif type(node) in _NAME_FIELDS and node not in own:
            name = getattr(node, _NAME_FIELDS[type(node)])
            lookup = isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
            if name is not None and not (lookup and name == own_class):
                names.add(name)
    names.discard("*")
    return frozenset(names)


def check_class_name(spec: Spec, source: str, style: str, names: frozenset[str]) -> None:
    """Refuse a class_name that the spec's OOP file binds or looks up (`names`, from
    emitted_names). The class lives only in that file, so those are the names it could
    shadow; the procedural file is held to the same set, so that both styles of a spec
    take the same class names."""
    value = spec.class_name
    if value not in names:
        return
    if style == "oop":
        reason = f"the emitted file uses the name {value!r}, and the class would shadow it"
    else:
        reason = (
            f"the oop file of this spec uses the name {value!r}, and the class would "
            "shadow it there (both styles take the same class names)"
        )
    if value == _derive_class_name(spec.name):
        reason += f"; name {spec.name!r} derives it, so set class_name"
    raise SpecError(source, "class_name", f"{value!r} is reserved: {reason}")


def render(
    plan: Plan,
    style: str,
    origin: str,
    target: str,
    overrides=(),
    allow_large: bool = False,
    command_target: str | None = None,
) -> str:
    """Plan -> the final, black-formatted, checked text of the emitted file. The header's
    regenerate line names command_target (the spec path from the output's folder) when
    given, else target; errors name target, as the user gave it."""
    recorded = target if command_target is None else command_target
    source = render_source(plan, style, origin, recorded, overrides, allow_large)
    text = format_source(source)
    tree = check_emitted(source, text)
    # The names the class may not take are those of the OOP file, where it lives. A
    # procedural file reads them from the OOP rendering of the same spec, unformatted
    # (black changes no name, and a second black run would double the cost).
    if style != "oop":
        tree = ast.parse(render_source(plan, "oop", origin, recorded, overrides, allow_large))
    names = emitted_names(tree, plan.spec.class_name)
    check_class_name(plan.spec, target, style, names)
    return text
