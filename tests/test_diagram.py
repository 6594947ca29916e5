"""`modelgen diagram`: the macro-architecture from the plan, tested by its structure."""

import re

import pytest
from conftest import PRESETS, ROOT

from generator.cli import main
from generator.diagram import dot
from generator.pipeline import plan_for

NODE = re.compile(r'^    (\w+)(\[/"|\["|\(\[")(.*?)("/\]|"\]|"\]\))$')
EDGE = re.compile(r'^    (\w+) (-->|-\. "(.*?)" \.->) (\w+)$')


def mermaid(target: str, capsys, *args: str) -> str:
    assert main(["diagram", target, *args]) == 0
    return capsys.readouterr().out


def parse(text: str):
    """{node id: [label lines]}, [(source, target, branch label or None)]."""
    lines = text.splitlines()
    assert lines[1] == "flowchart TD", lines[:2]
    nodes, edges = {}, []
    for line in lines[2:]:
        if node := NODE.match(line):
            nodes[node.group(1)] = node.group(3).split("<br/>")
        elif edge := EDGE.match(line):
            edges.append((edge.group(1), edge.group(4), edge.group(3)))
        else:
            raise AssertionError(f"neither a node nor an edge: {line!r}")
    return nodes, edges


def main_chain(edges) -> list[str]:
    """Follow the plain arrows from the input, up to where they fork (classifier.heads)."""
    step: dict[str, list[str]] = {}
    for source, target, branch in edges:
        if branch is None:
            step.setdefault(source, []).append(target)
    chain = ["input"]
    while len(step.get(chain[-1], [])) == 1:
        chain.append(step[chain[-1]][0])
    return chain


def total_params(nodes) -> int:
    return sum(int(m.replace(",", "")) for m in re.findall(r"([\d,]+) params", str(nodes)))


def test_resnet50(capsys):
    nodes, edges = parse(mermaid("resnet50", capsys))
    assert main_chain(edges) == ["input", "stem", "conv2", "conv3", "conv4", "conv5", "classifier"]
    assert nodes["input"] == ["input", "224x224x3"]
    blocks = {name: nodes[name][0] for name in ("conv2", "conv3", "conv4", "conv5")}
    assert blocks == {
        "conv2": "conv2: bottleneck x3",
        "conv3": "conv3: bottleneck x4",
        "conv4": "conv4: bottleneck x6",
        "conv5": "conv5: bottleneck x3",
    }
    shapes = [nodes[name][1].split(",")[0] for name in ("stem", "conv2", "conv3", "conv4", "conv5")]
    assert shapes == ["56x56x64", "56x56x256", "28x28x512", "14x14x1024", "7x7x2048"]
    assert nodes["classifier"][1] == "1000, 2,049,000 params"
    assert not [edge for edge in edges if edge[2] is not None], "resnet50 has no side branch"
    # The stage parameter counts add up to the network's.
    assert total_params(nodes) == plan_for("resnet50").total_params == 25_636_712


def test_inception_v1_branches_its_auxiliary_heads(capsys):
    nodes, edges = parse(mermaid("inception_v1", capsys))
    assert main_chain(edges) == [
        "input",
        "stem",
        "inception_3",
        "pool3",
        "inception_4",
        "pool4",
        "inception_5",
        "classifier",
    ]
    branches = [edge for edge in edges if edge[2] is not None]
    assert branches == [
        ("inception_4", "aux1", "after block 1"),  # 4a
        ("inception_4", "aux2", "after block 4"),  # 4d
    ]
    assert nodes["aux1"][0] == "aux1: inception_v1 head"
    assert nodes["inception_4"] == ["inception_4: inception_v1 x5", "14x14x832, 2,809,168 params"]
    # include_aux=False in the spec: no branch drawn.
    _, edges = parse(mermaid("inception_v1", capsys, "--set", "classifier.aux.include=false"))
    assert not [edge for edge in edges if edge[2] is not None]


def test_densenet121_has_transitions(capsys):
    nodes, edges = parse(mermaid("densenet121", capsys))
    chain = main_chain(edges)
    assert chain == [
        "input",
        "stem",
        "conv2",
        "pool2",
        "conv3",
        "pool3",
        "conv4",
        "pool4",
        "conv5",
        "post",
        "classifier",
    ]
    assert [nodes[f"conv{i}"][0].split(": ")[1] for i in range(2, 6)] == [
        "dense x6",
        "dense x12",
        "dense x24",
        "dense x16",
    ]
    # Each transition halves H, W and the channels (compression 0.5).
    for group, transition in (("conv2", "pool2"), ("conv3", "pool3"), ("conv4", "pool4")):
        h, w, c = map(int, nodes[group][1].split(",")[0].split("x"))
        assert nodes[transition][1].startswith(f"{h // 2}x{w // 2}x{c // 2},"), transition


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_draws_a_connected_graph(preset, capsys):
    nodes, edges = parse(mermaid(preset, capsys))
    ends = {end for source, target, _ in edges for end in (source, target)}
    assert ends == set(nodes), f"{preset}: nodes without edges or edges to nowhere"
    chain = main_chain(edges)
    plan = plan_for(preset)
    stages = [s.name for s in plan.stages if not s.name.startswith("aux")]
    pre_stem = ["pre_stem"] if getattr(plan.spec, "pre_stem", None) else []
    heads = [f"head_{head.name}" for head in plan.heads]  # a chain forks at several heads
    if plan.spec.architecture == "rcnn":  # regions warped before the CNN, fc, two heads
        assert chain == ["input", "crop", *stages[:-1], "fc"]
    elif plan.spec.architecture == "fast_rcnn":  # RoI pooling after it
        assert chain == ["input", *stages[:-1], "roi_pool", "fc"]
    elif plan.spec.architecture == "faster_rcnn":  # the RPN and its proposals, then the same
        assert chain == ["input", *stages[:-1], "proposals", "roi_pool", "fc"]
    else:
        assert chain == ["input", *pre_stem, *stages, *(heads if len(heads) == 1 else [])]
    assert total_params(nodes) == plan.total_params
    # The dot text holds the same nodes and edges.
    text = dot(plan_for(preset))
    assert set(re.findall(r'^    "(\w+)" \[shape=', text, re.M)) == set(nodes)
    assert len(re.findall(r'^    "\w+" -> "\w+"', text, re.M)) == len(edges)


def test_heads_branch_from_the_shared_classifier(capsys):
    nodes, edges = parse(mermaid("multitask_resnet", capsys))
    heads = [(source, target) for source, target, branch in edges if source == "classifier"]
    assert heads == [("classifier", "head_category"), ("classifier", "head_colour")]
    assert all(branch is None for *_, branch in edges), "the heads are outputs, not side branches"
    assert nodes["classifier"] == ["classifier: avg_pool", "128"]  # the pooled features
    assert nodes["head_category"] == ["category: softmax", "10, 1,290 params"]  # 129 x 10
    assert nodes["head_colour"] == ["colour: softmax, loss weight 0.5", "6, 774 params"]
    nodes, _ = parse(mermaid("multilabel_vgg", capsys))
    assert nodes["classifier"] == ["classifier: flatten", "256, 524,544 params"]
    assert nodes["head_tags"][0] == "tags: sigmoid"


def test_detectors_draw_boxes_regions_and_two_heads(capsys):
    nodes, edges = parse(mermaid("fast_rcnn", capsys))
    assert nodes["boxes"] == ["boxes", "64x4"]
    assert ("boxes", "roi_pool", None) in edges and ("block5", "roi_pool", None) in edges
    assert nodes["roi_pool"] == ["roi_pool: RoI max pool", "64x7x7x512"]
    # drop_last_pool: block5 keeps block4's stride-16 maps (600 / 16 = 37), no max pool.
    assert nodes["block4"] == ["block4: vgg x3", "37x37x512, 5,899,776 params"]
    assert nodes["block5"] == ["block5: vgg x3, no max pool", "37x37x512, 7,079,424 params"]
    # The last pool kept: stride 32, so an input of a multiple of 32 (600 is refused).
    sets = ["--set", "detector.drop_last_pool=false", "--set", "input_shape=[576, 576, 3]"]
    kept, _ = parse(mermaid("fast_rcnn", capsys, *sets))
    assert kept["block5"] == ["block5: vgg x3", "18x18x512, 7,079,424 params"]
    faster, _ = parse(mermaid("faster_rcnn", capsys))  # its RPN reads the same stride-16 maps
    assert faster["block5"] == ["block5: vgg x3, no max pool", "37x50x512, 7,079,424 params"]
    assert faster["rpn"][1].startswith(f"{37 * 50 * 9},")
    assert [t for s, t, _ in edges if s == "fc"] == ["head_scores", "head_boxes"]
    assert nodes["head_scores"] == ["cls_score: softmax", "64x21, 86,037 params"]  # 4097 x 21
    assert nodes["head_boxes"] == ["bbox_pred: box deltas", "64x80, 327,760 params"]
    nodes, edges = parse(mermaid("rcnn", capsys))
    assert ("input", "crop", None) in edges and ("boxes", "crop", None) in edges
    assert nodes["crop"] == ["crop: warp each region", "128x227x227x3"]
    assert nodes["block5"] == ["block5: vgg x3", "7x7x512, 7,079,424 params"]  # per warp
    assert nodes["head_scores"] == ["svm: linear SVMs", "128x20, 81,940 params"]


def test_faster_rcnn_draws_the_rpn_and_its_proposals(capsys):
    nodes, edges = parse(mermaid("faster_rcnn", capsys))
    assert nodes["gt"] == ["gt_boxes, gt_labels", "Gx4, G"]
    assert nodes["rpn"] == ["rpn: 9 anchors per cell", "16650, 2,382,893 params"]  # 37x50x9
    assert ("block5", "rpn", None) in edges and ("gt", "proposals", None) in edges
    assert ("block5", "roi_pool", "shared maps") in edges
    assert nodes["proposals"][1] == "128x4 (test: 300x4)"
    assert nodes["roi_pool"] == ["roi_pool: RoI max pool", "128x7x7x512"]
    assert [t for s, t, _ in edges if s == "fc"] == ["head_scores", "head_boxes"]
    assert nodes["head_scores"] == ["cls_score: softmax", "128x21, 86,037 params"]


def test_the_pre_stem_is_a_stage_before_the_stem(capsys):
    nodes, edges = parse(mermaid("augmented_resnet", capsys))
    assert main_chain(edges)[:3] == ["input", "pre_stem", "stem"]
    assert nodes["input"] == ["input", "any HxWx3"]  # it resizes: any size in
    assert nodes["pre_stem"] == [
        "pre_stem: resizing, flip, rotation, zoom, contrast, rescaling",
        "64x64x3",
    ]
    nodes, _ = parse(mermaid("resnet18", capsys, "--set", "pre_stem={flip: horizontal}"))
    assert nodes["input"] == ["input", "224x224x3"] and nodes["pre_stem"][0] == "pre_stem: flip"


def test_svg_needs_graphviz(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot binary here
    assert main(["diagram", "resnet18", "-o", str(tmp_path / "r.svg")]) == 2
    err = capsys.readouterr().err
    assert "Graphviz" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r.svg").exists()


def test_svg_with_a_fake_dot(tmp_path, monkeypatch):
    """When a `dot` binary is on PATH it gets the dot text and its output is the file."""
    fake = tmp_path / "dot"
    fake.write_text('#!/bin/sh\necho "<svg>$(wc -l)</svg>"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")  # the fake first
    assert main(["diagram", "resnet18", "-o", str(tmp_path / "r.svg")]) == 0
    lines = len(dot(plan_for("resnet18")).splitlines())
    assert (tmp_path / "r.svg").read_text().strip() == f"<svg>{lines}</svg>"


def test_output_file_is_not_clobbered(tmp_path, capsys):
    out = tmp_path / "d.md"
    assert main(["diagram", "resnet18", "-o", str(out)]) == 0
    assert out.read_text().splitlines()[1] == "flowchart TD"
    out.write_text("mine")
    assert main(["diagram", "resnet18", "-o", str(out)]) == 2
    assert out.read_text() == "mine"
    assert main(["diagram", "resnet18", "-o", str(out), "--force"]) == 0
    assert "flowchart TD" in out.read_text()


def test_the_docs_show_a_current_diagram():
    """docs/cli.md's diagram is the current output for its preset."""
    readme = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    match = re.search(r"```mermaid\n(%% (\w+): modelgen diagram\n.*?)```", readme, re.S)
    assert match, "docs/cli.md has no mermaid diagram"
    from generator.diagram import mermaid as draw

    assert match.group(1) == draw(plan_for(match.group(2)))
