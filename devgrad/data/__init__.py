"""Datasets: seeded synthetic generators, file readers, splits and a device-resident DataLoader."""
