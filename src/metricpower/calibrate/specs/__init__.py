"""Calibration specs and their target series (CSV), shipped with the package."""
