"""Datasets: the embedded benchmark, real-data adapters and the common manifest."""
