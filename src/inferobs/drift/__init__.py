"""Prediction and input drift: a baseline's bins, counted in the handler, compared in the analyzer.

Nothing heavy is imported here: `inferobs.drift.baseline` loads numpy when a
baseline is built.
"""
