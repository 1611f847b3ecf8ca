"""Analyses that re-run the model over many variants at once (one vectorised pass each)."""
