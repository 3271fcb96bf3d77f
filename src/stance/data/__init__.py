"""Labelled datasets: the one row schema, grouped splits and folds, corpora, build/save/load."""
