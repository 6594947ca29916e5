"""SqueezeNet: fire modules (squeeze 1x1 -> expand 1x1 + 3x3), delayed downsampling."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...fields import MAX_BLOCKS, Filters, Model
from ...plan import fire_layers, fire_pool_layers, plan_fire_group, plan_fire_pool
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
