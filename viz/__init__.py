"""Visualisation helpers for the Transformer Playground (figures and attention views)."""
