"""Free-form product captions for Fashion-MNIST pairs, with planted misalignment and ground truth.

:func:`fashion_freeform_captions` rewrites the captions of a
:class:`~misalignlab.data.loaders.fashion_mnist.FashionPairs` (class, tone, size from the pixels)
as product sentences in style ``a`` or ``b`` of
:mod:`~misalignlab.data.freeform.fashion_words` ("catalog picture: navy coat, roomy fit —
studio shot"), planting wrong / incomplete / unrelated captions at the
:class:`~misalignlab.data.freeform.plant.FreeformCfg` rates:

- wrong: one stated slot (class, tone or size, uniformly among those the pattern states) is
  written with a word of another value (another class, the other tone or size);
- incomplete: tone or size is left out where the pattern states it (the class is always written);
- unrelated: another pair's caption whose image differs in at least two of the slots it states.

The truth table is that of :func:`misalignlab.data.freeform.plant.plant`, with slot names ``class``,
``tone`` and ``size`` in ``stated`` / ``dropped`` / ``changed``. Nothing is read from disk here and
nothing is detected; the fixed "a dark large sandal" captions and their noise live in
:mod:`~misalignlab.data.loaders.fashion_mnist` and :mod:`~misalignlab.data.loaders.fashion_noise`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from misalignlab.data.freeform.fashion_words import DOMAIN, STYLES
from misalignlab.data.freeform.plant import FreeformCfg, plant
from misalignlab.data.loaders.fashion_mnist import FashionPairs


def fashion_freeform_captions(pairs: FashionPairs, cfg: FreeformCfg, seed: int = 0) -> tuple[list[str], pd.DataFrame]:
    """Free-form product captions with planted misalignment, and their truth table.

    Parameters
    ----------
    pairs : FashionPairs
        Images with their class, tone and size, e.g. from
        :func:`~misalignlab.data.loaders.fashion_mnist.fashion_mnist_pairs`.
    cfg : FreeformCfg
        Style and per-pair rates of each kind.
    seed : int
        Fixes every caption.

    Returns
    -------
    captions : list of str
        One caption per pair, in pair order.
    truth : pandas.DataFrame
        One row per pair, columns :data:`~misalignlab.data.freeform.plant.TRUTH_COLUMNS`.
    """
    if len(pairs) < 2:
        raise ValueError(f"need at least 2 pairs, got {len(pairs)}")
    codes = {
        "class": np.asarray(pairs.labels, dtype=np.int64),
        "tone": np.asarray(pairs.tone, dtype=np.int64),
        "size": np.asarray(pairs.size, dtype=np.int64),
    }
    return plant(codes, DOMAIN, STYLES[cfg.style], cfg, np.random.default_rng(seed))
