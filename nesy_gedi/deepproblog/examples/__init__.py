"""Data and networks for DeepProbLog's example scripts, written for nesy_gedi (same names, our own data code)."""
