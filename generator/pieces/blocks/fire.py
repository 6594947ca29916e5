"""SqueezeNet: fire modules (squeeze 1x1 -> expand 1x1 + 3x3), delayed downsampling."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...fields import MAX_BLOCKS, Filters, Model
from ...plan import blocks_before, ceil_pool, conv, span
from ...registry import register_block


class FireGroup(Model):
    # One fire module per entry, its squeeze width s: 1x1 squeeze to s, then 1x1 and 3x3
    # expands of 4 * s each, concatenated to 8 * s channels.
    n_filters: list[Filters] = Field(min_length=1, max_length=MAX_BLOCKS)

    @property
    def n_blocks(self) -> int:
        return len(self.n_filters)


class FireLearner(Model):
    """SqueezeNet: groups of fire modules, a 3x3/2 max pool between consecutive groups
    (delayed downsampling). bypass: none; simple, an identity shortcut around each fire
    module whose input and output widths match (fire3, 5, 7, 9 in SqueezeNet 1.0); complex,
    also a 1x1 conv -> ReLU shortcut around the others."""

    block: Literal["fire"]
    bypass: Literal["none", "simple", "complex"] = "none"
    groups: list[FireGroup] = Field(min_length=1, max_length=64)


def plan_fire_group(spec, c, shape, group):
    """Fire modules (biased convs, each then ReLU): 1x1 squeeze to s -> 1x1 and 3x3 expands
    to 4s each, concatenated (8s). A bypass adds the input back: as it is where the widths
    match (simple, complex), through a 1x1 conv -> ReLU where they do not (complex)."""
    for s in group.n_filters:
        squeeze = conv(c, shape, s, 1)
        conv(c, squeeze, 4 * s, 1)
        conv(c, squeeze, 4 * s, 3, same=True)
        if spec.learner.bypass == "complex" and shape[2] != 8 * s:
            conv(c, shape, 8 * s, 1)
        shape = (shape[0], shape[1], 8 * s)
    return shape


def plan_fire_pool(spec, c, shape):
    """SqueezeNet's delayed downsampling between groups: a ceil-mode 3x3/2 max pool."""
    return ceil_pool(c, shape, "the 3x3/2 max pool after the group")


def first_fire(spec, index) -> int:
    """The number of learner.groups[index]'s first fire module (fire2 is the first)."""
    return 2 + blocks_before(spec, index)


def fire_layers(spec, index, shape):
    """fire2..fire4: the last module's sum when a bypass adds one there, else its concat."""
    widths = spec.learner.groups[index].n_filters
    first = first_fire(spec, index)
    last = first + len(widths) - 1
    channels = 8 * widths[-2] if len(widths) > 1 else shape[2]  # the last module's input
    bypass = spec.learner.bypass
    adds = bypass == "complex" or (bypass == "simple" and channels == 8 * widths[-1])
    return span(f"fire{first}", f"fire{last}"), f"fire{last}_{'add' if adds else 'concat'}"


def fire_pool_layers(spec, index):
    name = f"pool{first_fire(spec, index) - 1}"  # after the module before it (pool4: fire4)
    return name, name


register_block(
    tag="fire",
    learner=FireLearner,
    plan_group=plan_fire_group,
    group_layers=fire_layers,
    templates=("learners/fire.py.j2", "groups/fire.py.j2", "blocks/fire.py.j2"),
    group_name="group",
    first_index=1,
    learner_doc=(
        "Each group stacks fire modules (squeeze 1x1 -> expand 1x1 + 3x3); a 3x3/2 max\n"
        "pool between consecutive groups halves H and W (delayed downsampling)."
    ),
    layer_names=(r"fire\d+_\w+", r"pool\d+(_pad)?"),
    plan_between=plan_fire_pool,
    between_name="pool_after_group",
    between_layers=fire_pool_layers,
)
