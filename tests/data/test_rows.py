"""RowView: fold models train on a selection of a (memmap) image store one batch at a time."""

import numpy as np
import pytest
import torch

from misalignlab.data.rows import RowView
from misalignlab.models.pair_model import ModelCfg
from misalignlab.train.pairs import PairTrainCfg, train_pairs
from misalignlab.train.trainer import TrainCfg


class CountingRows:
    """An array that records how many rows each read takes (a stand-in for a memmap store)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array, self.reads = array, []
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __getitem__(self, idx):
        out = self.array[idx]
        self.reads.append(1 if np.ndim(idx) == 0 else len(out))
        return out


def test_row_view_indexes_the_selection_and_refuses_a_whole_copy():
    base = np.arange(10 * 2).reshape(10, 2)
    view = RowView(base, np.array([7, 2, 5]))
    assert view.shape == (3, 2) and view.dtype == base.dtype and view.ndim == 2 and len(view) == 3
    np.testing.assert_array_equal(view[1], base[2])
    np.testing.assert_array_equal(view[1:], base[[2, 5]])
    np.testing.assert_array_equal(view[np.array([2, 0])], base[[5, 7]])
    with pytest.raises(TypeError, match="batches"):
        np.asarray(view)


def test_training_on_a_row_view_reads_one_batch_at_a_time_and_equals_training_on_the_copy(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (40, 16, 16, 3), dtype=np.uint8)
    store = np.lib.format.open_memmap(tmp_path / "images.npy", mode="w+", dtype=np.uint8, shape=images.shape)
    store[:] = images
    store.flush()
    rows = rng.permutation(40)[:30]
    captions = [f"a {c} thing" for c in rng.choice(["red", "blue", "green"], 30)]
    cfg = PairTrainCfg(
        train=TrainCfg(steps=4, batch_size=8, seed=3), model=ModelCfg(code_dim=4, image_size=16, max_len=6)
    )
    counted = CountingRows(np.load(tmp_path / "images.npy", mmap_mode="r"))
    lazy = train_pairs(RowView(counted, rows), captions, cfg)
    copied = train_pairs(images[rows], captions, cfg)
    assert counted.reads and max(counted.reads) <= 8  # never more than one batch of rows in memory
    for a, b in zip(lazy.state_dict().values(), copied.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
