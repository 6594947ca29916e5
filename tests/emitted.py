"""What an emitted file may contain, checked on its syntax tree (used by test_hostile.py and
test_fuzz.py).

`assert_inert(text, raw, style)` holds a file to the contract that makes a hostile spec
harmless: importing it only defines things. The top level is exactly

    the module docstring (and its text is exactly what the spec's fields say),
    `import keras`, `from keras import layers`,
    METAPARAMETERS = <a literal>        (procedural) | one plain class       (oop)
    function definitions                (procedural) |
    if __name__ == "__main__": ...

Besides, a Keras layer class of the templates (`class L1Distance(layers.Layer)`, registered
for saving) may sit among the functions (procedural) or in the class (oop).

Every default value is a literal, no decorator but `@staticmethod` (and the layer's), no
annotations (they would be evaluated at definition time), no imports but keras, no name
that the templates do not write, and no spec text outside docstrings.
"""

from __future__ import annotations

import ast

# Every bare name the templates write (golden files included); test_hostile checks that
# the golden files use no other. The class's own name is allowed on top.
TEMPLATE_NAMES = frozenset(
    """
    keras layers METAPARAMETERS build_model stem learner group projection_block
    identity_block classifier metaparameters self x name n_filters n_blocks n_layers strides
    first_strides block_strides index groups group_params shortcut preact units dense_units
    dropout activation n_classes input_shape include_top pooling classifier_activation
    inputs outputs params unknown __name__ __init__
    dense_block transition_block growth_rate compression
    width se_block channels gate ratio fire_block expand_1x1 expand_3x3 first number
    include_aux taps tap group_taps aux_classifier inception_block blocks block block_params
    aux_after letter n_1x1 n_3x3_reduce n_3x3 n_5x5_reduce n_5x5 n_pool_proj n_3x3dbl_reduce
    n_3x3dbl n_7x7_reduce n_7x7 n_7x7dbl_reduce n_7x7dbl n_7x7x3_reduce n_7x7x3 conv_bn
    filters kernel_size counter padding suffix grid reduction grid_reduction block_35x35
    block_17x17 block_8x8 reduction_35x35 reduction_17x17 branch_1x1 branch_3x3
    branch_3x3dbl branch_5x5 branch_7x7 branch_7x7dbl branch_7x7x3 branch_pool split_1x3
    split_3x1
    ops twin build_twin embedding_head L1Distance call left right distance pool
    latent_shape encoder decoder build_encoder build_decoder encoder_model decoder_model
    latent height factor
    model ValueError enumerate int isinstance len list min range reversed set sorted tuple
    staticmethod
    pre_stem include_pre_stem width heads head names
    _ area background best bg_iou bg_rank bilinear_weights bins bottom box_iou box_loss
    box_std box_targets box_weight boxes candidates cells centre_x centre_y check_boxes
    classes columns compile_for_training corners counted crop_and_resize decode_boxes
    deltas dh dw dx dy encode_boxes end error feature_maps feature_stride fg_fraction
    fg_iou foreground gt_boxes gt_labels half_height half_width hinge image_boxes
    image_height image_labels image_proposals image_width images inter label_column
    labels length maps mask match matched n_foreground n_regions negative noise
    optimizer other_area others overlaps own_class part per_class picked picked_bg
    picked_fg pixels pool_size pooled proposals region_head roi_bins roi_max_pool rows
    sample_regions sampled sampled_labels samples scale scales scores seed shape side
    size sliding_window_proposals smooth_l1 start step steps stop svm_loss
    svm_negative_iou svm_targets target_height target_width targets top training_targets
    union windows x1 x2 y1 y2 BoxCheck box_input compute_output_shape
    input_shape flipped finite bool float max round zip TypeError
    AnchorTargets Detections RegionLayer RegionProposals RoiTargets anchor_deltas
    anchor_labels anchor_targets anchors batch batch_size beaten big_enough box_best
    build_detector build_head build_rpn candidate chosen classify_regions
    compute_output_spec count cross_entropy detect found gather_boxes get_config
    grid_height grid_width gt_valid head_losses indices inside iou_threshold is_box_best
    is_foreground k keep kept keys kwargs last later limit limits loss loss_targets
    losses make_anchors max_detections max_output min_size n n_background n_boxes
    nms_iou non_max_suppression objectness order output pick_at_most position positions
    post_nms pre_nms propose rank ranked ratios real regions reported_loss roi_targets
    rpn rpn_deltas rpn_losses s sampling score_threshold settings shift sorted_boxes
    sorted_scores suppresses top_scores usable valid visit dict super
    """.split()
)


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
        and node.name in TEMPLATE_NAMES
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
            if (
                style != "procedural"
                or targets != ["METAPARAMETERS"]
                or not _is_literal(node.value)
            ):
                _fail(f"assignment {targets}", node)
            kinds.append("assign")
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
    want = (
        ["import", "import", "assign", *["def"] * kinds.count("def"), "main"]
        if style == "procedural"
        else ["import", "import", "class", "main"]
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


def check_names(tree: ast.Module, class_name: str) -> None:
    """Only the names the templates write: no injected identifier, call or builtin."""
    allowed = TEMPLATE_NAMES | {class_name}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in allowed:
            _fail(f"unexpected name {node.id!r}", node)
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
        tail.append(f"Layer names match {reference}, so its weights load by name.")
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


def assert_inert(text: str, raw: dict, style: str, payload: str = "") -> ast.Module:
    """The file parses, its top level only defines, and the docstring says what the spec
    says. `raw` is the spec as validated (class_name and title filled in when derived);
    `payload`, the hostile text planted in it, must not show up outside the docstrings.
    """
    tree = ast.parse(text)
    class_name = raw["class_name"]
    check_top_level(tree, style, class_name)
    check_names(tree, class_name)
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
