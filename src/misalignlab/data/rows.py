"""A lazy selection of rows of an array: what a fold model trains on without copying its images.

``images[train]`` with an index array copies every selected row into memory at once; on a memmap
store of a million pairs that is most of the store. :class:`RowView` keeps the index and reads rows
only when a batch asks for them, so training and embedding hold one batch at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class RowView:
    """Rows ``rows`` of ``base`` (an array or a memmap), read on indexing; shaped like the selection."""

    def __init__(self, base: Any, rows: np.ndarray) -> None:
        self.base = base
        self.rows = np.asarray(rows, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    @property
    def ndim(self) -> int:
        return self.base.ndim

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: Any) -> np.ndarray:
        """Rows at ``idx`` (an int, a slice or an index array) of the selection, read from ``base`` now."""
        return np.asarray(self.base[self.rows[idx]])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # Materialising the whole selection is what this class exists to avoid; refuse loudly
        # rather than let np.asarray(view) quietly copy a million images.
        raise TypeError("RowView is read in batches; index it (view[i:j]) instead of converting it whole")
