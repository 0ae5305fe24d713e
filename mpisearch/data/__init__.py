"""Datasets: HDF5 reading and writing, bundled datasets, shipping to ranks."""

from .dataset import Dataset, Fold

__all__ = ["Dataset", "Fold"]
