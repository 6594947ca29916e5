"""Block types: what a learner's groups are made of."""
