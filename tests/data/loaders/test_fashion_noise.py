"""Fashion-MNIST injection: rates, truth consistent with captions, unrelated differs in ≥ 2 slots."""

import numpy as np

from misalignlab.data.loaders.fashion_mnist import make_fashion_pairs
from misalignlab.data.loaders.fashion_noise import inject_fashion
from misalignlab.detect.vocabulary import builtin_vocabulary


def test_injected_fashion_captions_match_their_truth():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (600, 28, 28), dtype=np.uint8) * (rng.random((600, 28, 28)) < 0.5)
    pairs = make_fashion_pairs(images.astype(np.uint8), rng.integers(0, 10, 600))
    captions, truth = inject_fashion(pairs, wrong=0.2, incomplete=0.2, unrelated=0.2, seed=1)
    assert abs((truth["kind"] != "aligned").mean() - 0.6) < 0.06
    schema = builtin_vocabulary("fashion_mnist")
    for i, (cap, row) in enumerate(zip(captions, truth.itertuples(), strict=True)):
        said = {k: v[2] for k, v in schema.parse(cap).items()}
        clean = pairs.slots(i)
        if row.kind == "aligned":
            assert said == clean
        elif row.kind == "wrong":
            assert said[row.slot] == row.said != row.true == clean[row.slot]
            assert all(said[k] == clean[k] for k in clean if k != row.slot)
        elif row.kind == "incomplete":
            assert row.slot not in said and len(said) == 2
        else:
            assert sum(said[k] != clean[k] for k in clean) >= 2 and cap == pairs.captions[row.source]
