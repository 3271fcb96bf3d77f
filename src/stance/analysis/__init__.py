"""Metrics, plots, evaluation reports and run comparison (no model code)."""
