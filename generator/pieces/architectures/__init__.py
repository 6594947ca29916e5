"""Architectures: how the backbone (stem + learner) becomes a whole model."""
