"""Benchmark loaders on fixtures written in the real formats (and on the Debian files when present)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from misalignlab.data.loaders import (
    FASHION_MNIST_CLASSES,
    CaptionSetting,
    MPI3DComplex,
    Multimodal3DIdent,
    extract_npz_member,
    factors_of,
    fashion_caption,
    find_fashion_mnist,
    index_of,
    load_fashion_mnist,
    make_captions,
    make_fashion_pairs,
    mpi3d_setting,
    read_idx,
    write_idx,
)
from misalignlab.data.loaders.fashion_mnist import SPLIT_FILES
from misalignlab.data.loaders.multimodal3dident import IMAGE_LATENTS

# ---------------------------------------------------------------- IDX / Fashion-MNIST


def test_idx_roundtrip_plain_and_gzip(tmp_path: Path) -> None:
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        np.testing.assert_array_equal(read_idx(write_idx(tmp_path / name, arr)), arr)
    raw = (tmp_path / "a-idx3-ubyte").read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x03" and struct.unpack(">3I", raw[4:16]) == (2, 3, 4)
    ints = np.array([-1, 70000], dtype=np.int32)
    out = read_idx(write_idx(tmp_path / "i", ints))
    assert out.dtype == np.int32 and out.dtype.isnative and out.tolist() == [-1, 70000]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x02ab", "bad IDX magic number 01000801"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x02ab", "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x00", "IDX rank 0"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x02", "dimension sizes needs 8 bytes, found 4"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", r"truncated IDX file: data of shape \(5,\) needs 5 bytes, found 3"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x02abc", "trailing bytes"),
        (b"\x00\x00", "magic number needs 4 bytes"),
    ],
)
def test_idx_malformed_files_name_file_and_problem(tmp_path: Path, content: bytes, match: str) -> None:
    for path in (tmp_path / "bad-idx", tmp_path / "bad-idx.gz"):
        path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)
        with pytest.raises(ValueError, match=match) as err:
            read_idx(path)
        assert str(path) in str(err.value)


def test_idx_cut_gzip_stream_and_missing_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x.gz", np.zeros((50, 28, 28), np.uint8) + 7)
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(ValueError, match="x.gz"):
        read_idx(path)
    with pytest.raises(FileNotFoundError, match="nope"):
        read_idx(tmp_path / "nope")


def write_fashion_fixture(folder: Path, n: int = 20, gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.arange(n, dtype=np.uint8) % 10
    images = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):  # a filled box whose size and brightness vary
        side = 4 + (i * 7) % 20
        images[i, :side, :side] = 40 + (i * 37) % 200
    images[3, 0, 0] = 0  # keep a few exact zeros inside the item
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLIT_FILES:
        img_stem, lab_stem = SPLIT_FILES[split]
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{img_stem}{suffix}", images)
        write_idx(folder / f"{lab_stem}{suffix}", labels)
    del rng
    return images, labels


def test_fashion_fixture_loads_and_captions(tmp_path: Path) -> None:
    images, labels = write_fashion_fixture(tmp_path / "fm", gz=False)
    got_images, got_labels = load_fashion_mnist("test", tmp_path / "fm")
    np.testing.assert_array_equal(got_images, images)
    assert got_labels.dtype == np.int64 and got_labels.tolist() == labels.tolist()
    pairs = make_fashion_pairs(got_images, got_labels)
    assert len(pairs) == 20 and pairs.tone.mean() == 0.5 and pairs.size.mean() == 0.5
    i = 0  # image 0: a 4x4 box of value 40 — darkest and smallest
    assert pairs.slots(i) == {"tone": "dark", "size": "small", "class": "t-shirt"}
    assert pairs.captions[i] == "a dark small t-shirt"
    for k in range(len(pairs)):
        s = pairs.slots(k)
        assert pairs.captions[k] == fashion_caption(s["class"], s["tone"], s["size"])
    # thresholds fitted on one split are reused on another
    again = make_fashion_pairs(got_images[:5], got_labels[:5], thresholds=pairs.thresholds)
    assert again.captions == pairs.captions[:5]


def test_fashion_caption_slots_and_articles() -> None:
    assert fashion_caption("sandal", "dark", "large") == "a dark large sandal"
    assert fashion_caption("ankle boot") == "an ankle boot"
    assert fashion_caption("ankle boot", size="large") == "a large ankle boot"
    assert len(FASHION_MNIST_CLASSES) == 10


def test_fashion_per_class_thresholds_balance_each_class(tmp_path: Path) -> None:
    images, labels = write_fashion_fixture(tmp_path / "fm", n=40)
    pairs = make_fashion_pairs(images, labels.astype(np.int64), per_class=True)
    for c in range(10):
        assert pairs.size[labels == c].mean() == 0.5  # 4 images per class, distinct sizes


def test_find_fashion_mnist_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_fashion_fixture(tmp_path / "fm")
    monkeypatch.setenv("MISALIGNLAB_FASHION_MNIST", str(tmp_path / "fm"))
    assert find_fashion_mnist() == tmp_path / "fm"
    (tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        find_fashion_mnist(tmp_path / "fm")
    assert "t10k-labels-idx1-ubyte" in str(err.value)
    with pytest.raises(ValueError, match="valid: train, test"):
        load_fashion_mnist("val", tmp_path / "fm")


def test_fashion_label_image_count_mismatch(tmp_path: Path) -> None:
    write_fashion_fixture(tmp_path / "fm")
    write_idx(tmp_path / "fm" / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="20 images but .*train-labels-idx1-ubyte.gz has 3 labels"):
        load_fashion_mnist("train", tmp_path / "fm")


def test_real_debian_fashion_mnist(fashion_mnist) -> None:
    images, labels = load_fashion_mnist("test")
    assert images.shape == (10_000, 28, 28) and np.bincount(labels).tolist() == [1000] * 10


# ---------------------------------------------------------------- MPI3D-Complex

SMALL = (2, 3, 2, 3, 1, 2, 3)  # scaled-down factor sizes, same order as the real [4,4,2,3,3,40,40]


def test_factor_mapping_hand_computed() -> None:
    # real layout: strides (115200, 28800, 14400, 4800, 1600, 40, 1)
    idx = 2 * 115200 + 3 * 28800 + 1 * 14400 + 2 * 4800 + 1 * 1600 + 39 * 40 + 7
    assert idx == 343967
    assert factors_of(idx).tolist() == [[2, 3, 1, 2, 1, 39, 7]]
    assert factors_of([0, 460799]).tolist() == [[0] * 7, [3, 3, 1, 2, 2, 39, 39]]
    assert index_of([[2, 3, 1, 2, 1, 39, 7]]).tolist() == [idx]
    with pytest.raises(ValueError, match="out of range"):
        factors_of(460800)


def write_mpi3d(path: Path, sizes: tuple[int, ...] = SMALL, hw: int = 4, compressed: bool = False) -> np.ndarray:
    n = int(np.prod(sizes))
    images = np.zeros((n, hw, hw, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(n) % 256  # image i is recognisable by pixel (0, 0, 0)
    images[:, 0, 0, 1] = np.arange(n) // 256
    (np.savez_compressed if compressed else np.savez)(path, images=images)
    return images


def test_mpi3d_fixture_memmaps_and_reads_lazily(tmp_path: Path) -> None:
    images = write_mpi3d(tmp_path / "m.npz")
    ds = MPI3DComplex(tmp_path / "m.npz", factor_sizes=SMALL, image_shape=(4, 4, 3))
    assert len(ds) == 216 and isinstance(ds._images.base, np.memmap)
    got = ds.images([5, 200, 1])
    np.testing.assert_array_equal(got, images[[5, 200, 1]])
    # strides of SMALL: (108, 36, 18, 6, 6, 3, 1); 200 = 1*108 + 2*36 + 1*18 + 0*6 + 0*6 + 0*3 + 2
    assert ds.factors(200).tolist() == [[1, 2, 1, 0, 0, 0, 2]]
    assert index_of(ds.factors(200), SMALL).tolist() == [200]


def test_mpi3d_factored_shape_is_accepted(tmp_path: Path) -> None:
    images = write_mpi3d(tmp_path / "flat.npz")
    np.savez(tmp_path / "fact.npz", images=images.reshape(*SMALL, 4, 4, 3))
    ds = MPI3DComplex(tmp_path / "fact.npz", factor_sizes=SMALL, image_shape=(4, 4, 3))
    np.testing.assert_array_equal(ds.images([7]), images[[7]])


def test_mpi3d_errors(tmp_path: Path) -> None:
    kw = {"factor_sizes": SMALL, "image_shape": (4, 4, 3)}
    with pytest.raises(FileNotFoundError, match="nope.npz.*'images'"):
        MPI3DComplex(tmp_path / "nope.npz", **kw)
    np.savez(tmp_path / "key.npz", imgs=np.zeros((216, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"key.npz: no array 'images' in the archive; found: \['imgs'\]"):
        MPI3DComplex(tmp_path / "key.npz", **kw)
    np.savez(tmp_path / "shape.npz", images=np.zeros((216, 4, 4), np.uint8))
    with pytest.raises(
        ValueError, match=r"shape.npz: array 'images' is uint8 \(216, 4, 4\); expected uint8 \(216, 4, 4, 3\)"
    ):
        MPI3DComplex(tmp_path / "shape.npz", **kw)
    np.savez(tmp_path / "obj.npz", images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="Python objects"):
        MPI3DComplex(tmp_path / "obj.npz", **kw)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a readable .npz"):
        MPI3DComplex(tmp_path / "text.npz", **kw)
    write_mpi3d(tmp_path / "cut.npz")
    data = (tmp_path / "cut.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:2000] + data[-200:])  # keep the central directory, lose data
    with pytest.raises(ValueError, match="cut.npz"):
        MPI3DComplex(tmp_path / "cut.npz", **kw)


def test_mpi3d_compressed_fallback(tmp_path: Path) -> None:
    images = write_mpi3d(tmp_path / "c.npz", compressed=True)
    kw = {"factor_sizes": SMALL, "image_shape": (4, 4, 3)}
    with pytest.raises(ValueError, match="compressed, so it cannot be memory-mapped.*extract_npz_member"):
        MPI3DComplex(tmp_path / "c.npz", **kw)
    np.testing.assert_array_equal(MPI3DComplex(tmp_path / "c.npz", allow_full_load=True, **kw).images([3]), images[[3]])
    npy = extract_npz_member(tmp_path / "c.npz", "images", tmp_path / "images.npy")
    ds = MPI3DComplex(npy, **kw)
    assert isinstance(ds._images, np.memmap)
    np.testing.assert_array_equal(ds.images([9, 2]), images[[9, 2]])


def test_mpi3d_settings_match_paper() -> None:
    assert mpi3d_setting("selection", 1).mentioned == ("colour",)
    assert mpi3d_setting("selection", 5).mentioned == ("colour", "shape", "size", "camera", "background")
    assert [mpi3d_setting("perturbation", k).perturbed for k in range(1, 6)] == [
        (),
        ("background",),
        ("camera", "background"),
        ("size", "camera", "background"),
        ("shape", "size", "camera", "background"),
    ]
    with pytest.raises(ValueError, match="proper subset"):
        CaptionSetting(("colour",), ("colour",))
    with pytest.raises(ValueError, match="valid: selection, perturbation"):
        mpi3d_setting("drop", 1)


def test_mpi3d_captions_selection_and_perturbation() -> None:
    idx = np.arange(0, 460800, 97)
    factors = factors_of(idx)[:, :5]
    sel = make_captions(factors, idx, mpi3d_setting("selection", 1), seed=3)
    assert (sel.text_factors[:, 1:] == -1).all() and (sel.text_factors[:, 0] == factors[:, 0]).all()
    words = ("yellow", "green", "olive", "red")
    assert all(words[c] in cap and "croissant" not in cap for c, cap in zip(factors[:, 0], sel.captions))
    full = make_captions(factors, idx, mpi3d_setting("selection", 5), seed=3)
    i = int(np.flatnonzero((factors == [3, 2, 1, 0, 2]).all(1) & (full.template == 0))[0])
    assert full.captions[i] == "a large red croissant seen from the top, salmon background"
    pert = make_captions(factors, idx, mpi3d_setting("perturbation", 3), seed=3)
    assert (pert.text_factors[:, :3] == factors[:, :3]).all() and not pert.perturbed[:, :3].any()
    rate = pert.perturbed[:, 3:].mean()
    assert 0.87 < rate < 0.93  # perturb_prob 0.9
    changed = (pert.text_factors[:, 4] != factors[:, 4]).mean()
    assert 0.55 < changed < 0.65  # 0.9 * 2/3: a redraw may hit the true value
    assert set(np.unique(full.template)) == {0, 1, 2}


def test_mpi3d_captions_deterministic_per_index() -> None:
    idx = np.array([10, 20, 30, 40])
    setting = mpi3d_setting("perturbation", 5)
    a = make_captions(factors_of(idx)[:, :5], idx, setting, seed=1)
    b = make_captions(factors_of(idx[::-1])[:, :5], idx[::-1], setting, seed=1)
    assert a.captions == b.captions[::-1]
    c = make_captions(factors_of(idx)[:, :5], idx, setting, seed=2)
    assert c.captions != a.captions


def test_mpi3d_dataset_captions_on_fixture(tmp_path: Path) -> None:
    write_mpi3d(tmp_path / "m.npz")
    ds = MPI3DComplex(tmp_path / "m.npz", factor_sizes=SMALL, image_shape=(4, 4, 3))
    caps = ds.captions(np.arange(len(ds)), mpi3d_setting("perturbation", 2), seed=0)
    assert len(caps.captions) == 216 and (caps.text_factors[:, 4] == 0).all()  # background has 1 value here


# ---------------------------------------------------------------- Multimodal3DIdent


def write_m3di(root: Path, n: int = 3, split: str = "train") -> Path:
    d = root / split
    (d / "images").mkdir(parents=True)
    (d / "text").mkdir()
    width = max(1, int(np.ceil(np.log10(n))))
    for i in range(n):
        Image.new("RGB", (6, 6), (i * 40, 0, 0)).save(d / "images" / f"{i:0{width}d}.png")
    rng = np.random.default_rng(0)
    img = {k: rng.random(n) for k in IMAGE_LATENTS}
    img |= {
        "object_shape": np.arange(n) % 7,
        "object_xpos": np.arange(n) % 3,
        "object_ypos": np.zeros(n, int),
        "object_zpos": np.zeros(n),
    }
    pd.DataFrame(img).to_csv(d / "latents_image.csv", index=False)
    txt = {
        "object_shape": img["object_shape"],
        "object_xpos": img["object_xpos"],
        "object_ypos": img["object_ypos"],
        "object_zpos": np.zeros(n),
        "object_color_name": ["xkcd:bright aqua"] * n,
        "object_color_index": np.arange(n),
        "text_phrasing": np.arange(n) % 5,
    }
    pd.DataFrame(txt).to_csv(d / "latents_text.csv", index=False)
    lines = [f'A "xkcd:bright aqua" teapot is at the top-left of the image, number {i}.' for i in range(n)]
    (d / "text" / "text_raw.txt").write_text("\n".join(lines))  # the generator writes no final newline
    return d


def test_m3di_fixture_loads(tmp_path: Path) -> None:
    write_m3di(tmp_path / "m3di", n=12)
    ds = Multimodal3DIdent(tmp_path / "m3di", "train")
    assert len(ds) == 12
    s = ds[11]
    assert s.image_path.name == "11.png" and s.caption.endswith("number 11.")
    assert s.latents_image["object_shape"] == 4.0 and s.latents_text["object_color_name"] == "xkcd:bright aqua"
    assert ds.image(2).shape == (6, 6, 3) and ds.image(2)[0, 0].tolist() == [80, 0, 0]
    assert ds.image(2, size=4).shape == (4, 4, 3)
    assert [x.index for x in ds] == list(range(12))


def test_m3di_errors_name_file_and_row(tmp_path: Path) -> None:
    d = write_m3di(tmp_path / "m3di", n=3)
    with pytest.raises(FileNotFoundError, match=r"m3di/val.*splits present: \['train'\]"):
        Multimodal3DIdent(tmp_path / "m3di", "val")
    with pytest.raises(ValueError, match="valid: train, val, test"):
        Multimodal3DIdent(tmp_path / "m3di", "dev")
    df = pd.read_csv(d / "latents_image.csv")
    df.drop(columns=["spotlight_pos"]).to_csv(d / "latents_image.csv", index=False)
    with pytest.raises(ValueError, match=r"latents_image.csv, line 1: missing column\(s\) \['spotlight_pos'\]"):
        Multimodal3DIdent(tmp_path / "m3di")
    df.astype({"object_color": object}).assign(object_color=[0.1, "blue", 0.3]).to_csv(
        d / "latents_image.csv", index=False
    )
    with pytest.raises(ValueError, match=r"latents_image.csv, line 3: column 'object_color' is not a number: 'blue'"):
        Multimodal3DIdent(tmp_path / "m3di")
    df.to_csv(d / "latents_image.csv", index=False)
    (d / "text" / "text_raw.txt").write_text("one\ntwo\n")
    with pytest.raises(ValueError, match=r"row counts differ.*'text/text_raw.txt': 2"):
        Multimodal3DIdent(tmp_path / "m3di")
    (d / "text" / "text_raw.txt").write_bytes(b"one\n\xfftwo\nthree")
    with pytest.raises(ValueError, match=r"text_raw.txt, line 2: not valid UTF-8"):
        Multimodal3DIdent(tmp_path / "m3di")
    (d / "text" / "text_raw.txt").write_text("one\ntwo\nthree")
    (d / "images" / "2.png").unlink()
    ds = Multimodal3DIdent(tmp_path / "m3di")
    with pytest.raises(FileNotFoundError, match=r"images/2.png"):
        ds.image(2)


def test_mpi3d_member_shorter_than_its_header(tmp_path: Path) -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros((216, 4, 4, 3), np.uint8))
    header_only = buf.getvalue()[:128] + b"\x00" * 100  # header promises 10368 bytes, 100 follow
    with zipfile.ZipFile(tmp_path / "short.npz", "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("images.npy", header_only)
    with pytest.raises(ValueError, match=r"short.npz\[images.npy\]: truncated"):
        MPI3DComplex(tmp_path / "short.npz", factor_sizes=SMALL, image_shape=(4, 4, 3))
