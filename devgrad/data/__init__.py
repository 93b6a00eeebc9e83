"""Datasets: seeded synthetic generators, file readers, splits and a device-resident DataLoader."""

from devgrad.data.dataset import DataSummary, Splits, build_splits, describe, raw_dataset
from devgrad.data.files import DataError
from devgrad.data.loader import DataLoader

__all__ = ["DataError", "DataLoader", "DataSummary", "Splits", "build_splits", "describe", "raw_dataset"]
