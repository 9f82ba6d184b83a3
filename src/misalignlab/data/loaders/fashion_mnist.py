"""Fashion-MNIST as image–caption pairs with per-pair attribute ground truth.

Files come from the Debian package ``dataset-fashion-mnist``, which installs gzipped IDX files
under ``/usr/share/datasets/fashion-mnist/`` (``train-images-idx3-ubyte.gz`` …). Nothing is
downloaded. Captions are built from the class label plus two attributes computed from the pixels:

- tone: mean intensity of the item pixels (non-zero) against a median threshold → dark | light;
- size: fraction of non-zero pixels against a median threshold → small | large;

e.g. ``"a dark large sandal"``. The attributes are returned per pair so a misalignment-injection
step can swap or omit slots and know exactly what it changed. Thresholds are fitted on one split
(the dataset median by default, or per class) and can be reused on another.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from misalignlab.data.loaders.idx import read_idx

log = logging.getLogger(__name__)

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
TONES: tuple[str, ...] = ("dark", "light")  # index 0, 1
SIZES: tuple[str, ...] = ("small", "large")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "MISALIGNLAB_FASHION_MNIST"
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
INSTALL_HINT = "install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu)"


def _split_file(directory: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _missing_files(directory: Path) -> list[str]:
    return [stem for pair in SPLIT_FILES.values() for stem in pair if _split_file(directory, stem) is None]


def find_fashion_mnist(directory: Path | str | None = None) -> Path:
    """The folder holding the four Fashion-MNIST IDX files (``.gz`` or plain).

    Looks at ``directory`` if given, else ``$MISALIGNLAB_FASHION_MNIST``, else the Debian location
    ``/usr/share/datasets/fashion-mnist``.

    Raises
    ------
    FileNotFoundError
        Naming the places searched, the files missing, and how to install the Debian package.
    """
    if directory is not None:
        candidates = [Path(directory)]
    else:
        env = os.environ.get(ENV_VAR)
        candidates = ([Path(env)] if env else []) + [DEBIAN_DIR]
    problems = []
    for folder in candidates:
        missing = _missing_files(folder) if folder.is_dir() else ["(folder does not exist)"]
        if not missing:
            return folder
        problems.append(f"{folder}: missing {', '.join(missing)}")
    raise FileNotFoundError(
        "Fashion-MNIST not found; " + "; ".join(problems) + f". {INSTALL_HINT}, or pass its folder / set {ENV_VAR}"
    )


def load_fashion_mnist(split: str = "train", directory: Path | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` int64 of one split (``train`` or ``test``)."""
    if split not in SPLIT_FILES:
        raise ValueError(f"unknown Fashion-MNIST split {split!r}; valid: {', '.join(SPLIT_FILES)}")
    folder = find_fashion_mnist(directory)
    img_path, lab_path = (_split_file(folder, stem) for stem in SPLIT_FILES[split])
    assert img_path is not None and lab_path is not None  # find_fashion_mnist checked them
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{img_path}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{lab_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{img_path} has {len(images)} images but {lab_path} has {len(labels)} labels")
    bad = np.flatnonzero(labels >= len(FASHION_MNIST_CLASSES))
    if bad.size:
        raise ValueError(f"{lab_path}: label {labels[bad[0]]} at item {bad[0]} is not a class 0..9")
    log.info("loaded Fashion-MNIST %s: %d images from %s", split, len(images), folder)
    return images, labels.astype(np.int64)


def item_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image: mean intensity of the item (non-zero) pixels and the fraction of item pixels."""
    mask = images > 0  # (N, H, W)
    n_item = mask.sum(axis=(1, 2))  # (N,)
    total = images.astype(np.int64).sum(axis=(1, 2))  # zeros add nothing, so this sums item pixels
    mean = total / np.maximum(n_item, 1)  # (N,) in [0, 255]; 0 for a blank image
    coverage = n_item / (images.shape[1] * images.shape[2])  # (N,) in [0, 1]
    return mean, coverage


@dataclass(frozen=True)
class AttributeThresholds:
    """Median thresholds per class (the same value ten times unless fitted ``per_class``)."""

    tone: tuple[float, ...]  # (10,) mean item intensity; >= threshold → light
    size: tuple[float, ...]  # (10,) item pixel fraction; >= threshold → large
    per_class: bool = False


def fit_thresholds(images: np.ndarray, labels: np.ndarray, per_class: bool = False) -> AttributeThresholds:
    """Median thresholds over the dataset, or per class (which decorrelates the attributes from it).

    With one global median, size is nearly a function of class (sandals are small, coats large),
    so a detector could not tell a wrong size word from a wrong class; ``per_class`` avoids that.
    """
    mean, coverage = item_stats(images)
    k = len(FASHION_MNIST_CLASSES)
    if not per_class:
        return AttributeThresholds((float(np.median(mean)),) * k, (float(np.median(coverage)),) * k, False)
    tone, size = [], []
    for c in range(k):
        sel = labels == c
        if not sel.any():
            raise ValueError(f"class {c} ({FASHION_MNIST_CLASSES[c]}) has no images; cannot fit per-class thresholds")
        tone.append(float(np.median(mean[sel])))
        size.append(float(np.median(coverage[sel])))
    return AttributeThresholds(tuple(tone), tuple(size), True)


def compute_attributes(
    images: np.ndarray, labels: np.ndarray, thresholds: AttributeThresholds
) -> tuple[np.ndarray, np.ndarray]:
    """Tone (0 dark, 1 light) and size (0 small, 1 large) per image, each ``(N,)`` int8."""
    mean, coverage = item_stats(images)
    tone = (mean >= np.asarray(thresholds.tone)[labels]).astype(np.int8)
    size = (coverage >= np.asarray(thresholds.size)[labels]).astype(np.int8)
    return tone, size


def fashion_caption(cls: str, tone: str | None = None, size: str | None = None) -> str:
    """``"a dark large sandal"``; a slot given as ``None`` is omitted (``"an ankle boot"``)."""
    words = " ".join(w for w in (tone, size, cls) if w)
    article = "an" if words[:1].lower() in ("a", "e", "i", "o", "u") else "a"
    return f"{article} {words}"


@dataclass(frozen=True)
class FashionPairs:
    """Fashion-MNIST pairs with the caption slots that produced each caption."""

    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int64, index into FASHION_MNIST_CLASSES
    tone: np.ndarray  # (N,) int8, index into TONES
    size: np.ndarray  # (N,) int8, index into SIZES
    captions: tuple[str, ...]  # (N,)
    thresholds: AttributeThresholds

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, keep: np.ndarray) -> FashionPairs:
        """The pairs at positions ``keep`` (an index array), in that order, with the same thresholds."""
        keep = np.asarray(keep)
        captions = tuple(self.captions[i] for i in keep.tolist())
        return FashionPairs(
            self.images[keep], self.labels[keep], self.tone[keep], self.size[keep], captions, self.thresholds
        )

    def slots(self, i: int) -> dict[str, str]:
        """Ground-truth words of pair ``i``: ``{"tone": "dark", "size": "large", "class": "sandal"}``."""
        return {
            "tone": TONES[self.tone[i]],
            "size": SIZES[self.size[i]],
            "class": FASHION_MNIST_CLASSES[self.labels[i]],
        }


def make_fashion_pairs(
    images: np.ndarray, labels: np.ndarray, thresholds: AttributeThresholds | None = None, per_class: bool = False
) -> FashionPairs:
    """Caption ``images`` (N, H, W) uint8 with labels (N,); thresholds fitted here unless given."""
    labels = np.asarray(labels, dtype=np.int64)
    if images.ndim != 3 or len(images) != len(labels):
        raise ValueError(f"expected images (N, H, W) and labels (N,), got {images.shape} and {labels.shape}")
    thresholds = thresholds or fit_thresholds(images, labels, per_class)
    tone, size = compute_attributes(images, labels, thresholds)
    captions = tuple(
        fashion_caption(FASHION_MNIST_CLASSES[c], TONES[t], SIZES[s])
        for c, t, s in zip(labels.tolist(), tone.tolist(), size.tolist(), strict=True)
    )
    return FashionPairs(images, labels, tone, size, captions, thresholds)


def fashion_mnist_pairs(
    split: str = "train",
    directory: Path | str | None = None,
    thresholds: AttributeThresholds | None = None,
    per_class: bool = False,
) -> FashionPairs:
    """Load a split and caption it; pass the train split's ``thresholds`` when captioning test."""
    images, labels = load_fashion_mnist(split, directory)
    return make_fashion_pairs(images, labels, thresholds, per_class)
