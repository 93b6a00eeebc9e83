"""PyTorch's DataLoader over map-style datasets: TensorDataset, default_collate of tuples, dicts,
arrays and numbers, shuffling, drop_last, collate_fn; the device-resident (X, y) loader stays."""

from __future__ import annotations

import numpy as np
import pytest

import devgrad as dg
from devgrad.data import DataLoader, MapLoader, TensorDataset, default_collate


class Squares:
    """A map-style dataset: only __len__ and __getitem__."""

    def __len__(self) -> int:
        return 5

    def __getitem__(self, i):
        return np.array([i, i * i], dtype=np.float32), i % 2, {"weight": 0.5 * i, "name": f"s{i}"}


def test_tensor_dataset_batches_in_order(device):
    X = dg.tensor(np.arange(14.0).reshape(7, 2), device=device)
    y = dg.tensor(np.arange(7), device=device)
    loader = DataLoader(TensorDataset(X, y), batch_size=3)
    assert isinstance(loader, MapLoader) and len(loader) == 3
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(3, 2), (3, 2), (1, 2)]
    assert np.concatenate([b[1].numpy() for b in batches]).tolist() == list(range(7))
    assert batches[0][0].device is device
    assert len(DataLoader(dataset=TensorDataset(X, y), batch_size=3, drop_last=True)) == 2


def test_any_map_style_dataset_is_collated_as_pytorch():
    features, labels, extra = next(iter(DataLoader(Squares(), batch_size=4)))
    assert features.shape == (4, 2) and features.dtype == np.float32
    assert labels.numpy().tolist() == [0, 1, 0, 1] and labels.dtype == np.int64
    assert extra["weight"].dtype == np.float64 and extra["name"] == ["s0", "s1", "s2", "s3"]
    one = [s for s in DataLoader(Squares(), batch_size=None)]
    assert len(one) == 5 and one[2][1] == 0


def test_shuffling_is_seeded_and_covers_every_sample():
    orders = [np.concatenate([b[1].numpy() for b in DataLoader(TensorDataset(dg.zeros(9, 1), dg.arange(9)),
                                                                batch_size=4, shuffle=True, generator=seed)])
              for seed in (1, 1, 2)]
    assert sorted(orders[0].tolist()) == list(range(9)) and (orders[0] == orders[1]).all()
    assert not (orders[0] == orders[2]).all()


def test_collate_fn_and_mistakes():
    sizes = [len(batch) for batch in DataLoader(Squares(), batch_size=2, collate_fn=list)]
    assert sizes == [2, 2, 1]
    with pytest.raises(TypeError, match="needs __len__ and __getitem__"):
        DataLoader(object(), batch_size=2)
    with pytest.raises(ValueError, match="num_workers=2"):
        DataLoader(Squares(), batch_size=2, num_workers=2)
    with pytest.raises(ValueError, match="same first dimension"):
        TensorDataset(dg.zeros(3), dg.zeros(4))
    with pytest.raises(TypeError, match="cannot batch samples of type object"):
        default_collate([object(), object()])


def test_the_device_resident_loader_of_arrays_is_unchanged():
    loader = DataLoader(np.ones((6, 2)), np.arange(6), batch_size=4, shuffle=False)
    assert not isinstance(loader, MapLoader) and [b[0].shape[0] for b in loader] == [4, 2]


def test_each_pass_draws_a_new_order_and_set_epoch_pins_one():
    # A seed is applied once and the order advances per pass, as PyTorch's generator does.
    maps = DataLoader(TensorDataset(dg.arange(10)), batch_size=10, shuffle=True, generator=0)
    first, second = (next(iter(maps))[0].numpy() for _ in range(2))
    assert sorted(first.tolist()) == list(range(10)) and not (first == second).all()
    again = DataLoader(TensorDataset(dg.arange(10)), batch_size=10, shuffle=True, generator=0)
    assert (next(iter(again))[0].numpy() == first).all()
    arrays = DataLoader(np.arange(10.0)[:, None], np.arange(10), batch_size=10, shuffle=True, seed=0)
    a, b = (next(iter(arrays))[1].numpy() for _ in range(2))
    assert not (a == b).all()
    arrays.set_epoch(1)
    assert (next(iter(arrays))[1].numpy() == b).all()
    arrays.set_epoch(0)
    assert (next(iter(arrays))[1].numpy() == a).all() and (next(iter(arrays))[1].numpy() == b).all()
