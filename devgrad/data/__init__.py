"""Datasets: seeded synthetic generators, file readers, splits and a device-resident DataLoader."""

from devgrad.data.dataset import DataSummary, Splits, build_splits, describe, raw_dataset
from devgrad.data.files import DataError
from devgrad.data.loader import DataLoader
from devgrad.data.map_loader import MapLoader, TensorDataset, default_collate

__all__ = ["DataError", "DataLoader", "DataSummary", "MapLoader", "Splits", "TensorDataset", "build_splits",
           "default_collate", "describe", "raw_dataset"]
