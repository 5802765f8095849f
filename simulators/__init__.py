"""Simulated meters speaking real protocols, with known ground truth."""
