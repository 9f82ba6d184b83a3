"""Rendered production-line scenes with known factors: factors, drawing, captions, planted
misalignment with ground truth, distribution shifts, and the dataset folder format."""
