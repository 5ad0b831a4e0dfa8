"""Evaluation of trained models against held-out data (``bot test``)."""
