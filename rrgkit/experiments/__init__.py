"""Experiments as data: grids of training configs over seeds, cached runs, and seed-aware summaries."""
