"""Batch scoring of new articles: resumable state, output tables, the scoring run."""
