"""`modelgen summary`: the plan as a table (no keras), the figures model.summary() gives.

One row per output of each stage (Stage.rows): the stem, each group (and the transitions
between groups), the learner's closing BN-ReLU, the classifier; a stage with several
outputs gives one row per output (the shared classifier and each of classifier.heads; a
detector's fc layers, class scores and box deltas; the RPN's 3x3 conv, objectness and box
deltas). Each row: its layer-name prefix in the built model, its output shape without the
batch axis, its parameters and its multiply-accumulates (see generator/plan.py for the
convention), per sample of the model's input.
"""

from __future__ import annotations

import textwrap

from .plan import Plan, Stage


def _shape(shape: tuple) -> str:
    return "x".join(str(side) for side in shape)


def macs_text(macs: int) -> str:
    """3,858,000,000 -> "3.86 G": three significant figures and an SI prefix."""
    for scale, unit in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K")):
        if macs >= scale:
            value = macs / scale
            digits = 2 if value < 10 else 1 if value < 100 else 0
            return f"{value:.{digits}f} {unit}"
    return str(macs)


def rows(plan: Plan) -> list[Stage]:
    """The summary's rows: each stage's outputs in build order."""
    return [row for stage in plan.stages for row in stage.rows]


def summary_json(plan: Plan) -> dict:
    """The JSON object: the totals, then one entry per row. `name` is the layer-name
    prefix, `output_shape` leaves out the batch axis, `layer` is the path of the layer
    whose output it is through the built model's sub-models ("twin/conv2_block2_out")."""
    return {
        "total_params": plan.total_params,
        "trainable_params": plan.trainable_params,
        "non_trainable_params": plan.total_params - plan.trainable_params,
        "total_macs": plan.total_macs,
        "stages": [
            {
                "name": row.prefix,
                "output_shape": list(row.output_shape),
                "params": row.params,
                "trainable_params": row.trainable,
                "macs": row.macs,
                "layer": row.layer,
            }
            for row in rows(plan)
        ],
    }


# What the rows of each architecture are, said under the table.
NOTES = {
    "siamese": "the twin's rows are its sub-model 'twin', applied to both images: its weights "
    "count once, its MACs twice (per pair)",
    "autoencoder": "the rows are the sub-models 'encoder' and 'decoder'",
    "rcnn": "the backbone's rows are per warped region; MACs count every one of the n_regions "
    "regions of an image",
    "fast_rcnn": "the head's rows are per image, one entry per region; MACs count every region",
    "faster_rcnn": "'rpn/' rows are the sub-model 'rpn' (backbone and RPN), 'head/' rows the "
    "sub-model 'head', run on each of the n_regions RoIs sampled per image (MACs count them "
    "all); the training model's outputs are its four losses",
}


def summary_text(plan: Plan) -> str:
    """A readable table: one line per row, then the totals."""
    spec = plan.spec
    header = ("name", "output shape", "params", "MACs")
    lines = []
    for row in rows(plan):
        scope = row.layer.rpartition("/")[0]
        name = f"{scope}/{row.prefix}" if scope else row.prefix
        lines.append((name, _shape(row.output_shape), f"{row.params:,}", macs_text(row.macs)))
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(4)]
    rule = "-" * (sum(widths) + 6)

    def format_line(line) -> str:
        name, shape, params, macs = line
        text = f"{name:<{widths[0]}}  {shape:<{widths[1]}}  {params:>{widths[2]}}  "
        return (text + f"{macs:>{widths[3]}}").rstrip()

    out = [
        f"{spec.name} ({spec.architecture}), input {_shape(spec.input_shape)}",
        rule,
        format_line(header),
        rule,
    ]
    out += [format_line(line) for line in lines]
    out += [
        rule,
        f"total params: {plan.total_params:,}",
        f"trainable params: {plan.trainable_params:,}",
        f"non-trainable params: {plan.total_params - plan.trainable_params:,}",
        f"MACs: {macs_text(plan.total_macs)} ({plan.total_macs:,}) per "
        f"{'pair' if spec.architecture == 'siamese' else 'image'}",
    ]
    if spec.architecture in NOTES:
        out += textwrap.wrap(f"note: {NOTES[spec.architecture]}", 88, subsequent_indent="  ")
    return "\n".join(out) + "\n"
