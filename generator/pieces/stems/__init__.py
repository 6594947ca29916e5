"""Stem kinds: what turns the pixels into the first group's input."""
