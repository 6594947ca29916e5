"""What an emitted file may contain, checked on its syntax tree (used by test_hostile.py and
test_fuzz.py).

`assert_inert(text, raw, style)` holds a file to the contract that makes a hostile spec
harmless: importing it only defines things. The top level is exactly

    the module docstring (and its text is exactly what the spec's fields say),
    `import keras`, `from keras import layers`,
    METAPARAMETERS = <a literal>        (procedural) | one plain class       (oop)
    IMAGENET_WEIGHTS = <a literal>      (both, where weights="imagenet" is offered)
    function definitions                (procedural) |
    if __name__ == "__main__": ...

Besides, a Keras layer class of the templates (`class L1Distance(layers.Layer)`, registered
for saving) may sit among the functions (procedural) or in the class (oop).

Every default value is a literal, no decorator but `@staticmethod` (and the layer's), no
annotations (they would be evaluated at definition time), no imports but keras, no name
that the templates do not write (golden_names: the names the golden files use, read from
them), and no spec text outside docstrings.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def _name_of(node: ast.AST) -> str | None:
    """The name a node binds or looks up: a bare name, a def or class, an argument, an
    imported name (attributes and keywords are no names: no global can shadow them)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.arg):
        return node.arg
    if isinstance(node, ast.alias):
        return node.asname or node.name
    return None


def names_in(tree: ast.Module) -> set[str]:
    """Every name a file binds or looks up, computed here independently of
    generator.render.emitted_names."""
    return {name for node in ast.walk(tree) if (name := _name_of(node)) is not None}


def model_class(tree: ast.Module) -> str | None:
    """The model class of an OOP file: its one top-level class (layer classes sit inside
    it); a procedural file has none (its top-level classes are layers)."""
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    return classes[0] if len(classes) == 1 and not defs else None


@lru_cache(maxsize=1)
def golden_names() -> frozenset[str]:
    """Every name the templates write: the names the golden files (golden/*/*.py) bind or
    look up, less each OOP file's own class name. An emitted file may use no other name
    (check_names); the class's own name is allowed on top."""
    names: set[str] = set()
    for path in sorted(GOLDEN.glob("*/*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= names_in(tree) - {model_class(tree)}
    assert names, f"no golden files under {GOLDEN}"
    return frozenset(names)


class NotInert(AssertionError):
    pass


def _fail(message: str, node: ast.AST | None = None) -> None:
    where = f" (line {node.lineno})" if node is not None and hasattr(node, "lineno") else ""
    raise NotInert(message + where)


def _is_literal(node: ast.AST | None) -> bool:
    if node is None:
        return True
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _check_function(node: ast.AST, allowed_decorators: tuple[str, ...]) -> None:
    """A def evaluates its decorators, defaults and annotations when it runs."""
    if not isinstance(node, ast.FunctionDef):
        _fail(f"{type(node).__name__} where a plain def belongs", node)
    for decorator in node.decorator_list:
        if not (isinstance(decorator, ast.Name) and decorator.id in allowed_decorators):
            _fail(f"decorator {ast.unparse(decorator)!r} on {node.name}", node)
    args = node.args
    for default in [*args.defaults, *args.kw_defaults]:
        if not _is_literal(default):
            _fail(f"non-literal default {ast.unparse(default)!r} in {node.name}", node)
    every_arg = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    if node.returns is not None or any(a is not None and a.annotation for a in every_arg):
        _fail(f"annotation on {node.name}", node)


# The one other kind of class a file may define (module level in procedural files, inside
# the model class in oop ones): a Keras layer the templates write, such as the Siamese
# twin's L1Distance, registered so that a saved model loads again.
LAYER_BASES = ["layers.Layer"]
LAYER_DECORATORS = ["keras.saving.register_keras_serializable(package='modelgen')"]


def _is_layer_class(node: ast.AST, earlier: set[str] | None = None) -> bool:
    """A registered layer class: based on layers.Layer, or on one of the layer classes
    defined before it in the same body (earlier; Faster R-CNN's layers share a base)."""
    bases = [ast.unparse(base) for base in getattr(node, "bases", [])]
    return (
        isinstance(node, ast.ClassDef)
        and node.name in golden_names()
        and (bases == LAYER_BASES or (len(bases) == 1 and bases[0] in (earlier or set())))
        and not node.keywords
        and [ast.unparse(d) for d in node.decorator_list] == LAYER_DECORATORS
    )


def _check_layer_class(node: ast.ClassDef) -> None:
    """A layer class body runs at import: a docstring, then plain defs."""
    if not node.body or not _docstring(node.body[0]):
        _fail(f"class {node.name} has no docstring", node)
    for item in node.body[1:]:
        _check_function(item, ())


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and ast.unparse(node.test) in ("__name__ == '__main__'", '__name__ == "__main__"')
        and not node.orelse
    )


def check_top_level(tree: ast.Module, style: str, class_name: str) -> None:
    body = tree.body
    if not body or not _docstring(body[0]):
        _fail("the file does not start with its docstring")
    kinds = []
    layer_classes: set[str] = set()
    for node in body[1:]:
        if isinstance(node, ast.Import):
            if [(a.name, a.asname) for a in node.names] != [("keras", None)]:
                _fail(f"import {ast.unparse(node)!r}", node)
            kinds.append("import")
        elif isinstance(node, ast.ImportFrom):
            names = {(a.name, a.asname) for a in node.names}
            if (
                node.module != "keras"
                or node.level
                or not names <= {("layers", None), ("ops", None)}
            ):
                _fail(f"import {ast.unparse(node)!r}", node)
            kinds.append("import")
        elif isinstance(node, ast.Assign):
            targets = [ast.unparse(t) for t in node.targets]
            allowed = (["METAPARAMETERS"] if style == "procedural" else []) + ["IMAGENET_WEIGHTS"]
            if targets[0] not in allowed or len(targets) != 1 or not _is_literal(node.value):
                _fail(f"assignment {targets}", node)
            kinds.append("assign" if targets == ["METAPARAMETERS"] else "weights")
        elif isinstance(node, ast.FunctionDef):
            if style != "procedural":
                _fail(f"module-level def {node.name} in an oop file", node)
            _check_function(node, ())
            kinds.append("def")
        elif _is_layer_class(node, layer_classes) and style == "procedural":
            _check_layer_class(node)
            layer_classes.add(node.name)
            kinds.append("def")
        elif isinstance(node, ast.ClassDef):
            if style != "oop" or node.name != class_name:
                _fail(f"class {node.name}", node)
            if node.bases or node.keywords or node.decorator_list:
                _fail(f"class {node.name} has bases, keywords or decorators", node)
            _check_class_body(node)
            kinds.append("class")
        elif _is_main_guard(node):
            kinds.append("main")
        else:
            _fail(f"top-level {type(node).__name__}: {ast.unparse(node)[:80]!r}", node)
    weights = ["weights"] if "weights" in kinds else []  # the published weights' addresses
    want = (
        ["import", "import", "assign", *weights, *["def"] * kinds.count("def"), "main"]
        if style == "procedural"
        else ["import", "import", *weights, "class", "main"]
    )
    if kinds != want:
        _fail(f"top-level layout {kinds}, want {want}")


def _check_class_body(node: ast.ClassDef) -> None:
    """A class body runs at import: docstring, one literal assignment, defs."""
    body = node.body
    if not body or not _docstring(body[0]):
        _fail(f"class {node.name} has no docstring", node)
    layer_classes: set[str] = set()
    for item in body[1:]:
        if isinstance(item, ast.Assign):
            if [ast.unparse(t) for t in item.targets] != ["metaparameters"]:
                _fail("class-level assignment other than metaparameters", item)
            if not _is_literal(item.value):
                _fail("metaparameters is not a literal", item)
        elif _is_layer_class(item, layer_classes):
            _check_layer_class(item)
            layer_classes.add(item.name)
        else:
            _check_function(item, ("staticmethod",))


def check_names(tree: ast.Module, class_name: str, extra_names=frozenset()) -> None:
    """Only the names the templates write (golden_names, and `extra_names` for a template
    that no golden file shows): no injected identifier, call or builtin."""
    allowed = golden_names() | {class_name} | set(extra_names)
    for node in ast.walk(tree):
        name = _name_of(node)
        if name is not None and name not in allowed:
            _fail(f"unexpected name {name!r}", node)
        if isinstance(node, (ast.Import, ast.ImportFrom)) and node not in tree.body:
            _fail("an import below the top level", node)
        if isinstance(node, (ast.Global, ast.Nonlocal, ast.Lambda, ast.Await, ast.Yield)):
            _fail(f"unexpected {type(node).__name__}", node)


def intended_docstring(raw: dict) -> str:
    """The module docstring the spec's text fields ask for, computed independently of the
    templates: the title and a period; then the description (trailing spaces dropped from
    each line, blank lines around it dropped); then the citation and the reference."""
    title = raw["title"]
    description = "\n".join(line.rstrip(" ") for line in raw.get("description", "").split("\n"))
    description = description.strip("\n ")
    tail = []
    if raw.get("citation"):
        tail.append(raw["citation"])
    reference = raw.get("reference", "")
    if reference.startswith("keras.applications."):
        from generator.pretrained import builds_reference, published_for
        from generator.spec import validate

        spec = validate(raw, "spec")
        if published_for(spec):  # weights="imagenet": the published file
            tail.append(
                f"Layer names match {reference}, so its weights load by name:\n"
                'weights="imagenet" fetches and loads its published ImageNet weights.'
            )
        elif builds_reference(spec):  # the network, without the published file's address
            tail.append(
                f"Layer names match {reference}, so its weights copy across by layer\n"
                "name; modelgen has no address for its published ImageNet file."
            )
        else:
            tail.append(
                f"Layer names follow {reference}'s; this backbone differs from it, so its\n"
                "published weights do not fit."
            )
    elif reference:
        tail.append(f"Reference network: {reference}.")
    parts = [part for part in (description, "\n".join(tail)) if part]
    if not parts:
        return f"{title}."
    return f"{title}.\n\n" + "\n\n".join(parts) + "\n"


def strip_docstrings(tree: ast.Module) -> str:
    """The code without any docstring (module, class, functions), as source text."""
    tree = ast.parse(ast.unparse(tree))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)):
            if node.body and _docstring(node.body[0]):
                node.body = node.body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def assert_inert(
    text: str, raw: dict, style: str, payload: str = "", extra_names=frozenset()
) -> ast.Module:
    """The file parses, its top level only defines, and the docstring says what the spec
    says. `raw` is the spec as validated (class_name and title filled in when derived);
    `payload`, the hostile text planted in it, must not show up outside the docstrings;
    `extra_names` are names a template writes that no golden file shows.
    """
    tree = ast.parse(text)
    class_name = raw["class_name"]
    check_top_level(tree, style, class_name)
    check_names(tree, class_name, extra_names)
    docstring = ast.get_docstring(tree, clean=False)
    want = intended_docstring(raw)
    if docstring != want:
        raise NotInert(f"module docstring {docstring!r}\n != intended {want!r}")
    if payload.strip() and payload in strip_docstrings(tree):
        raise NotInert(f"{payload[:60]!r} shows up outside the docstrings")
    lines = text.split("\n")
    if not (lines[0].startswith("# Code generated by modelgen ") and lines[1].startswith("#")):
        raise NotInert("the first two lines are not the header comments")
    return tree


def imports_only_keras(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(a.name != "keras" and not a.name.startswith("keras.") for a in node.names):
                return False
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level or not (module == "keras" or module.startswith("keras.")):
                return False
    return True
