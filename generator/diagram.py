"""`modelgen diagram`: the macro-architecture of a plan as a picture (no keras).

One graph, drawn from the plan's stages: the input, the pre-stem (preprocessing layers,
when the spec has one), the stem, each group with its block type, block count and output
shape (transitions between groups too), the classifier, and the heads that branch off
(Inception's auxiliary classifiers, dotted, from the group whose block feeds them; the
named outputs of classifier.heads, one solid arrow each from the shared classifier).
`mermaid` writes Mermaid flowchart text (GitHub renders it in Markdown as is), `dot`
Graphviz text; `svg` runs Graphviz's `dot` on that when the binary is installed. A
detector (R-CNN, Fast R-CNN) is drawn with its boxes input, the region crop or RoI pool, and
its class-score and box-delta heads as two branches (_detector_graph); Faster R-CNN with
its ground-truth input, the RPN and the proposal layer instead of the boxes input.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from .errors import SpecError
from .plan import Plan


@dataclass
class Node:
    id: str
    label: list[str]  # lines
    shape: str = "box"  # box | io | head


def _shape_text(shape: tuple) -> str:
    return "x".join(str(side) for side in shape)


def _tap_groups(plan: Plan) -> list[tuple[int, int]]:
    """(group index, block number) of each auxiliary classifier's input, in the order the
    learner returns them (aux1, aux2 ...)."""
    taps = []
    learner = getattr(plan.spec, "learner", None)  # an autoencoder has none
    for index, group in enumerate(learner.groups if learner is not None else ()):
        for number in sorted(getattr(group, "aux_after", ())):
            taps.append((index, number))
    return taps


def _pre_stem(plan: Plan, nodes: list[Node], edges: list) -> str:
    """The input node (any H x W when the pre-stem resizes or crops) and the pre-stem's node
    when the spec has one; returns the id the stem hangs from."""
    shape = tuple(plan.spec.input_shape)
    pre_stem = getattr(plan.spec, "pre_stem", None)
    if pre_stem is None:
        nodes.append(Node("input", ["input", _shape_text(shape)], "io"))
        return "input"
    side = "any HxW" if pre_stem.takes_any_size else "x".join(map(str, shape[:2]))
    nodes.append(Node("input", ["input", f"{side}x{shape[2]}"], "io"))
    # Its layers by their spec fields, in the order they act.
    layers = ", ".join(name for name in type(pre_stem).model_fields if getattr(pre_stem, name))
    nodes.append(Node("pre_stem", [f"pre_stem: {layers}", _shape_text(shape)]))
    edges.append(("input", "pre_stem", ""))
    return "pre_stem"


def _head_width(plan: Plan, before: tuple) -> int:
    """The width of the features every head of classifier.heads reads: the last dense
    layer's units (flatten), else the pooled channels of the stage before the classifier."""
    units = plan.spec.classifier.dense_units
    return units[-1] if units else before[-1]


def _detector_graph(plan: Plan) -> tuple[list[Node], list[tuple[str, str, str]]]:
    """A region-based detector: two inputs (images, and boxes: n_regions proposals), the
    regions cut out (R-CNN warps each from the image before the CNN; Fast R-CNN RoI-pools
    each from the CNN's shared maps), the fc layers, and two heads that branch off them:
    the class scores (softmax over the classes + background, or R-CNN's linear SVMs) and
    the class-specific box deltas. Faster R-CNN makes its own regions: the RPN on the
    shared maps, the proposal layer (which also samples the training RoIs among the
    proposals and the ground-truth boxes, its second input), then RoI pooling of the
    shared maps (a side arrow)."""
    spec = plan.spec
    detector = spec.detector
    n_regions, n_classes = detector.n_regions, spec.n_classes
    channels = spec.input_shape[2]
    faster = spec.architecture == "faster_rcnn"
    nodes = [
        Node("input", ["images", _shape_text(tuple(spec.input_shape))], "io"),
        Node("gt", ["gt_boxes, gt_labels", "Gx4, G"], "io")
        if faster
        else Node("boxes", ["boxes", f"{n_regions}x4"], "io"),
    ]
    edges: list[tuple[str, str, str]] = []
    pixels = "input"
    if getattr(spec, "pre_stem", None) is not None:  # photometric steps, before the regions
        steps = ", ".join(
            name for name in type(spec.pre_stem).model_fields if getattr(spec.pre_stem, name)
        )
        nodes.append(Node("pre_stem", [f"pre_stem: {steps}", _shape_text(tuple(spec.input_shape))]))
        edges.append(("input", "pre_stem", ""))
        pixels = "pre_stem"
    rcnn = spec.architecture == "rcnn"
    if rcnn:
        side = detector.crop_size
        nodes.append(
            Node("crop", ["crop: warp each region", f"{n_regions}x{side}x{side}x{channels}"])
        )
        edges += [(pixels, "crop", ""), ("boxes", "crop", "")]
        previous = "crop"
    else:
        previous = pixels
    head = None
    for stage in plan.stages:
        if stage.kind == "classifier":
            head = stage
            continue
        label = [f"{stage.name}: {stage.detail}", _shape_text(stage.output_shape)]
        if stage.params:
            label[-1] += f", {stage.params:,} params"
        nodes.append(Node(stage.name, label))
        edges.append((previous, stage.name, ""))
        previous = stage.name
    maps = [stage for stage in plan.stages if stage.kind not in ("classifier", "rpn")][-1]
    if faster:
        rpn = detector.rpn
        shape = f"{n_regions}x4 (test: {rpn.test_post_nms}x4)"
        nodes.append(Node("proposals", ["proposals: decode, clip, NMS, sample RoIs", shape]))
        edges += [(previous, "proposals", ""), ("gt", "proposals", "")]
        previous = "proposals"
    if not rcnn:
        side = detector.pool_size
        shape = f"{n_regions}x{side}x{side}x{maps.output_shape[-1]}"
        nodes.append(Node("roi_pool", ["roi_pool: RoI max pool", shape]))
        if faster:  # the proposals pick the regions, from the shared maps
            edges += [(previous, "roi_pool", ""), (maps.name, "roi_pool", "shared maps")]
        else:
            edges += [(previous, "roi_pool", ""), ("boxes", "roi_pool", "")]
        previous = "roi_pool"
    units = spec.classifier.dense_units
    width = units[-1] if units else maps.output_shape[-1]
    n_scores = n_classes if rcnn else n_classes + 1
    score_params, box_params = (width + 1) * n_scores, (width + 1) * 4 * n_classes
    if head is not None:
        fc = head.params - score_params - box_params
        label = ["fc: " + ", ".join(map(str, units)) if units else "fc", f"{n_regions}x{width}"]
        if fc:
            label[-1] += f", {fc:,} params"
        nodes.append(Node("fc", label))
        edges.append((previous, "fc", ""))
        previous = "fc"
    scores = "svm: linear SVMs" if rcnn else "cls_score: softmax"
    nodes.append(
        Node("head_scores", [scores, f"{n_regions}x{n_scores}, {score_params:,} params"], "head")
    )
    nodes.append(
        Node(
            "head_boxes",
            ["bbox_pred: box deltas", f"{n_regions}x{4 * n_classes}, {box_params:,} params"],
            "head",
        )
    )
    edges += [(previous, "head_scores", ""), (previous, "head_boxes", "")]
    return nodes, edges


def graph(plan: Plan) -> tuple[list[Node], list[tuple[str, str, str]]]:
    """Nodes and edges (source id, target id, label; a labelled edge is a side branch)."""
    if plan.architecture.is_detector:
        return _detector_graph(plan)
    nodes: list[Node] = []
    edges: list[tuple[str, str, str]] = []
    group_ids: dict[str, str] = {}
    previous = _pre_stem(plan, nodes, edges)
    before: tuple = tuple(plan.spec.input_shape)
    for stage in plan.stages:
        if stage.kind == "classifier" and stage.name.startswith("aux"):
            continue  # a side branch, below
        node_id = stage.name
        # Every transition between groups (DenseNet's, the pools of SqueezeNet and
        # Inception v1) halves H and W; the shape says the rest.
        detail = "H, W / 2" if stage.kind == "transition" else stage.detail
        heads = plan.heads if stage.kind == "classifier" else []
        if heads:  # the shared part here, one node per named head below
            width = _head_width(plan, before)
            head_params = [(width + 1) * head.n_classes for head in heads]
            label = [f"{stage.name}: {detail}", str(width)]
            if stage.params - sum(head_params):
                label[-1] += f", {stage.params - sum(head_params):,} params"
        else:
            label = [f"{stage.name}: {detail}", _shape_text(stage.output_shape)]
            if stage.params:
                label[-1] += f", {stage.params:,} params"
        shape = "head" if stage.kind == "classifier" and not heads else "box"
        nodes.append(Node(node_id, label, shape))
        edges.append((previous, node_id, ""))
        if stage.kind == "group":
            group_ids[stage.path] = node_id
        for head, params in zip(heads, head_params if heads else [], strict=True):
            text = f"{head.name}: {head.activation}"
            if head.loss_weight != 1.0:
                text += f", loss weight {head.loss_weight:g}"
            nodes.append(
                Node(f"head_{head.name}", [text, f"{head.n_classes}, {params:,} params"], "head")
            )
            edges.append((node_id, f"head_{head.name}", ""))
        previous = node_id
        before = stage.output_shape
    heads = [stage for stage in plan.stages if stage.name.startswith("aux")]
    for stage, (group, block) in zip(heads, _tap_groups(plan), strict=False):
        label = [f"{stage.name}: {stage.detail} head", _shape_text(stage.output_shape)]
        label[-1] += f", {stage.params:,} params"
        nodes.append(Node(stage.name, label, "head"))
        source = group_ids.get(f"learner.groups[{group}]", previous)
        edges.append((source, stage.name, f"after block {block}"))
    return nodes, edges


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def mermaid(plan: Plan) -> str:
    nodes, edges = graph(plan)
    brackets = {"box": ('["', '"]'), "io": ('[/"', '"/]'), "head": ('(["', '"])')}
    lines = [f"%% {plan.spec.name}: modelgen diagram", "flowchart TD"]
    for node in nodes:
        left, right = brackets[node.shape]
        lines.append(f"    {node.id}{left}{'<br/>'.join(map(_mermaid_text, node.label))}{right}")
    for source, target, label in edges:
        arrow = f' -. "{_mermaid_text(label)}" .-> ' if label else " --> "
        lines.append(f"    {source}{arrow}{target}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def dot(plan: Plan) -> str:
    nodes, edges = graph(plan)
    styles = {"box": "box", "io": "parallelogram", "head": "box, style=rounded"}
    lines = [f'digraph "{plan.spec.name}" {{', "    node [fontname=Helvetica];"]
    for node in nodes:
        label = "\\n".join(_dot_text(line) for line in node.label)
        lines.append(f'    "{node.id}" [shape={styles[node.shape]}, label="{label}"];')
    for source, target, label in edges:
        extra = f' [style=dashed, label="{_dot_text(label)}"]' if label else ""
        lines.append(f'    "{source}" -> "{target}"{extra};')
    return "\n".join(lines) + "\n}\n"


def svg(plan: Plan, source: str) -> str:
    """The dot graph rendered by Graphviz; a clear error when `dot` is not installed."""
    binary = shutil.which("dot")
    if binary is None:
        raise SpecError(source, "--format", "svg needs Graphviz's `dot` binary on PATH")
    proc = subprocess.run(
        [binary, "-Tsvg"], input=dot(plan), capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        raise SpecError(source, "--format", f"dot failed: {proc.stderr.strip()[:200]}")
    return proc.stdout


FORMATS = ("mermaid", "dot", "svg")


def render_diagram(plan: Plan, source: str, fmt: str) -> str:
    if fmt == "mermaid":
        return mermaid(plan)
    if fmt == "dot":
        return dot(plan)
    return svg(plan, source)
