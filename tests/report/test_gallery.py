"""The diagnosis gallery on a synthetic pair table over real image files (one deleted since ingestion).

300 pairs on 299 images (the first image has two captions), four types, hostile captions and a
hostile slot name; previews re-read through :func:`~misalignlab.workflows.diagnose.reread_thumbnails`.
The browser test loads the page in headless Chromium, filters and pages, and checks nothing injected ran.
"""

from __future__ import annotations

import base64
import io
import json
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from misalignlab.data.ingest import reread_image
from misalignlab.kinds import KINDS
from misalignlab.report.gallery import PAGE_SIZE, THUMB_SIDE, render_gallery, select_pairs, write_gallery
from misalignlab.report.gallery_plots import slot_profile, write_gallery_plots
from misalignlab.workflows.diagnose import reread_thumbnails

SCRIPT_CAPTION = "</script><script>window.__pwned = 1</script> a red gear"
IMG_CAPTION = '<img src=x onerror="window.__pwned = 2"> a blue cube'
BAD_SLOT = "<b>slot</b>"
N = 300
TYPES = ["aligned"] * 150 + ["incomplete"] * 50 + ["wrong"] * 80 + ["unrelated"] * 20


@pytest.fixture
def dataset(tmp_path):
    """(table, images, root, thumbnail): row 0 and 1 share image ``img000``; row 5's file is deleted
    after ingestion; row 7 has no file reference; rows 2 and 3 carry the hostile captions."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    (root / "img").mkdir(parents=True)
    kinds = np.array(TYPES, dtype=object)[rng.permutation(N)]
    kinds[[0, 2, 3, 4, 5]] = "wrong"
    kinds[1] = "aligned"
    keys = ["img000", "img000"] + [f"img{i:03d}" for i in range(2, N)]
    files = [f"img/{k}.jpg" for k in keys]
    for f in dict.fromkeys(files):
        pixels = np.full((160, 240, 3), rng.integers(0, 256, 3), np.uint8)  # wider than tall: aspect kept
        Image.fromarray(pixels).save(root / f, quality=90)
    (root / files[5]).unlink()  # gone since ingestion
    score = np.where(kinds == "aligned", rng.uniform(0, 0.6, N), rng.uniform(0.3, 1.0, N)).round(4)
    score[[2, 3, 5]] = [0.999, 0.998, 0.997]
    probs = rng.dirichlet(np.ones(4), N)
    slot = np.where(kinds == "wrong", rng.choice(["colour", "shape", "size"], N), "").astype(object)
    slot[4] = BAD_SLOT
    missing = np.where(kinds == "incomplete", rng.choice(["size", "colour, size"], N), "").astype(object)
    table = pd.DataFrame(
        {
            "id": [f"p{i:03d}" for i in range(N)],
            "image_key": keys,
            "image": [str(root / f) for f in files],
            "source": [f"captions.csv:{i + 2}" for i in range(N)],
            "caption": [f"caption {i}" for i in range(N)],
            "score_similarity": rng.uniform(0, 1, N),
            "score": score,
            "type": kinds,
            **{f"p_{k}": probs[:, j] for j, k in enumerate(KINDS)},
            "explanation": np.where(kinds == "aligned", "", "something is off"),
            "slot": slot,
            "stated": np.where(slot != "", "red", ""),
            "likely": np.where(slot != "", "blue", ""),
            "missing": missing,
            "better_match": np.where(kinds == "unrelated", "p001", ""),
            "quarantine": kinds != "aligned",
        }
    )
    table.loc[2, "caption"], table.loc[3, "caption"] = SCRIPT_CAPTION, IMG_CAPTION
    table.loc[7, "image"] = ""
    images = rng.integers(0, 256, (N, 16, 16, 3), dtype=np.uint8)
    stream = SimpleNamespace(thumbnail=lambda ref, side: reread_image(ref, root, side))
    return table, images, root, reread_thumbnails(stream)


def _summary(table):
    n = len(table)
    return {
        "pairs": n,
        "flagged": int(table["quarantine"].sum()),
        "types": {
            k: {"count": int((table.type == k).sum()), "rate": (table.type == k).mean(), "ci95": [0, 1]} for k in KINDS
        },
        "ingest": {"rows_read": n + 1, "accepted": n, "quarantined": 1},
    }


def _data(page: str) -> dict:
    return json.loads(re.search(r"<script type='application/json' id='gallery-data'>(.*?)</script>", page, re.S)[1])


def _render(dataset, cap=1000, **kw):
    table, images, _, thumbnail = dataset
    return render_gallery(table, _summary(table), images=images, thumbnail=thumbnail, cap=cap, **kw)


def test_page_is_self_contained_and_hostile_text_only_escaped(dataset, tmp_path):
    plots = write_gallery_plots(dataset[0], tmp_path / "plots")
    page = _render(dataset, plots=plots)
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:|//)""", page, re.I)
    assert all(v.startswith("data:") for v in re.findall(r"""src=["']([^"']*)""", page))
    assert "<link" not in page and "Content-Security-Policy" in page and "default-src 'none'" in page
    assert page.count("<script") == 2 and page.count("</script>") == 2  # the data and the page's own script
    for hostile in (SCRIPT_CAPTION, IMG_CAPTION, BAD_SLOT, "<img src=x", "<script>window"):
        assert hostile not in page
    assert "\\u003c/script\\u003e\\u003cscript\\u003ewindow.__pwned" in page  # only as escaped JSON text
    assert "&lt;b&gt;slot&lt;/b&gt;" in page  # the slot menu, escaped
    assert {p["cap"] for p in _data(page)["pairs"]} >= {SCRIPT_CAPTION, IMG_CAPTION}  # intact in the data
    assert "id='plot-score_by_type'" in page and "id='plot-slot_profile'" in page


def test_every_shown_pair_has_its_path_source_and_evidence(dataset):
    table = dataset[0]
    page = _render(dataset)
    data = _data(page)
    shown = [p["id"] for p in data["pairs"]]
    assert shown == list(table["id"].iloc[select_pairs(table, 1000)]) and len(shown) == N
    scores = [p["score"] for p in data["pairs"]]
    assert scores == sorted(scores, reverse=True)  # most suspicious first
    for path in table["image"]:
        assert path == "" or path in page
    row = table.set_index("id").loc["p004"]
    pair = next(p for p in data["pairs"] if p["id"] == "p004")
    assert (
        pair["src"] == row["source"]
        and pair["slot"] == BAD_SLOT
        and (pair["stated"], pair["likely"]) == ("red", "blue")
    )
    assert pair["p"] == [round(row[f"p_{k}"], 4) for k in KINDS] and data["detectors"] == ["similarity"]
    img000 = [e for e in data["images"] if e["key"] == "img000"]
    assert len(img000) == 1 and img000[0]["n"] == 2  # one entry, two captions
    assert sum(p["img"] == data["images"].index(img000[0]) for p in data["pairs"]) == 2


def test_counts_per_type_are_right(dataset):
    table = dataset[0]
    page = _render(dataset, cap=120)
    counts = dict(re.findall(r"<tr data-type='(\w+)'><td>\w+</td><td class='count'>(\d+)</td>", page))
    assert {k: int(v) for k, v in counts.items()} == table["type"].value_counts().to_dict()
    shown = table["type"].iloc[select_pairs(table, 120)].value_counts()
    for kind in KINDS:
        n, of = re.search(
            rf"data-type='{kind}'>{kind} <span class='n'>(\d+)</span> <span class='of'>of (\d+)</span>", page
        ).groups()
        assert (int(n), int(of)) == (shown.get(kind, 0), (table["type"] == kind).sum())


def test_cap_is_honoured_and_said(dataset):
    table = dataset[0]
    non_aligned = int((table["type"] != "aligned").sum())  # about 150
    page = _render(dataset, cap=120)
    assert len(_data(page)["pairs"]) == 120
    assert f"Showing 120 of {N} pairs: the 120 most suspicious of the {non_aligned} non-aligned pairs" in page
    assert set(_data(page)["pairs"][i]["type"] for i in range(120)) <= {"incomplete", "wrong", "unrelated"}
    page = _render(dataset, cap=non_aligned + 20)
    data = _data(page)
    aligned = table[table["type"] == "aligned"].sort_values("score", ascending=False, kind="stable")
    assert {p["id"] for p in data["pairs"] if p["type"] == "aligned"} == set(aligned["id"][:20])
    assert (
        f"Showing {non_aligned + 20} of {N} pairs: all {non_aligned} non-aligned pairs and the 20 highest-scoring aligned"
        in page
    )


def test_previews_are_read_from_the_files_and_failures_show_a_reason(dataset, tmp_path):
    table, images, _, thumbnail = dataset
    out = write_gallery(tmp_path / "gallery.html", table, _summary(table), images=images, thumbnail=thumbnail)
    data = _data(out.read_text(encoding="utf-8"))
    by_key = {e["key"]: e for e in data["images"]}
    gone = by_key["img005"]
    assert (
        gone["uri"] is None and gone["why"].startswith("image_missing") and "p005" in {p["id"] for p in data["pairs"]}
    )
    assert by_key["img007"]["note"].startswith("decoded copy")  # no reference: the decoded copy, marked
    read = by_key["img010"]
    assert "note" not in read and read["uri"].startswith("data:image/jpeg;base64,")
    size = Image.open(io.BytesIO(base64.b64decode(read["uri"].split(",", 1)[1]))).size
    assert size == (THUMB_SIDE, 128)  # 240 × 160 → 192 × 128
    assert (
        f"{N - 1} images: {N - 3} previews re-read from the original files, 1 from decoded copies, 1 without"
        in out.read_text()
    )


def test_five_captions_of_an_image_make_one_card_however_their_scores_interleave():
    keys = [f"img{i % 3}" for i in range(15)]  # rows cycle through 3 images: 5 captions each
    score = np.linspace(0.99, 0.01, 15)  # most suspicious first, so the images interleave in the page's order
    table = pd.DataFrame(
        {
            "id": [f"p{i:02d}" for i in range(15)],
            "image_key": keys,
            "image": [f"/data/{k}.jpg" for k in keys],
            "caption": [f"caption {i}" for i in range(15)],
            "score": score,
            "type": ["wrong" if i < 4 else "aligned" for i in range(15)],
            **{f"p_{k}": np.full(15, 0.25) for k in KINDS},
            "quarantine": [i < 4 for i in range(15)],
        }
    )
    reads: list[str] = []
    thumb = lambda ref: reads.append(ref) or np.zeros((4, 4, 3), np.uint8)  # noqa: E731
    data = _data(render_gallery(table, _summary(table), thumbnail=thumb, cap=10))
    assert [e["key"] for e in data["images"]] == ["img0", "img1", "img2"] and all(e["n"] == 5 for e in data["images"])
    assert sorted(reads) == ["/data/img0.jpg", "/data/img1.jpg", "/data/img2.jpg"]  # each image read once
    by_id = table.set_index("id")["image_key"]
    assert len(data["pairs"]) == 10  # the cap counts captions; every image still says it has 5
    assert all(data["images"][p["img"]]["key"] == by_id[p["id"]] for p in data["pairs"])


def test_plots_and_slot_profile(dataset, tmp_path):
    table = dataset[0]
    paths = write_gallery_plots(table, tmp_path / "plots")
    assert sorted(p.name for p in paths.values()) == ["score_by_type.png", "slot_profile.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths.values())
    prof = slot_profile(table)
    wrong = table[table["type"] == "wrong"]
    assert prof.loc["colour", "wrong"] == (wrong["slot"] == "colour").sum()
    incomplete = table[table["type"] == "incomplete"]
    assert prof.loc["size", "missing"] == len(incomplete)  # every incomplete row leaves size out
    assert prof.loc["colour", "missing"] == (incomplete["missing"] == "colour, size").sum()
    assert prof.loc[BAD_SLOT, "wrong"] == 1 and prof.loc[BAD_SLOT, "missing"] == 0


@pytest.mark.slow
def test_gallery_filters_and_pages_in_a_browser_and_nothing_injected_runs(dataset, tmp_path):
    from tests.report.test_pilot_report_browser import CHROMIUM, FLAGS, _browser_or_skip

    sync_api = _browser_or_skip()
    table, images, _, thumbnail = dataset
    path = write_gallery(tmp_path / "gallery.html", table, _summary(table), images=images, thumbnail=thumbnail)
    data = _data(path.read_text(encoding="utf-8"))
    groups: dict[int, list[str]] = {}
    for p in data["pairs"]:
        if p["type"] == "wrong":
            groups.setdefault(p["img"], []).append(p["id"])
    pages = [sum(list(groups.values())[s : s + PAGE_SIZE], []) for s in (0, PAGE_SIZE)]
    messages: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: messages.append(f"console {m.type}: {m.text}"))
            page.on("pageerror", lambda e: messages.append(f"page error: {e}"))
            page.on("dialog", lambda d: (messages.append(f"dialog: {d.message}"), d.dismiss()))
            page.goto(path.as_uri(), wait_until="load")
            first_all = page.locator("#cards .card").count()
            page.click("#types button[data-type='wrong']")
            seen = [page.locator("#cards .pair.match").evaluate_all("els => els.map(e => e.dataset.id)")]
            captions = page.locator("#cards .pair.match .caption").all_inner_texts()
            other = page.locator(".card[data-image='img000'] details .pair").evaluate_all(
                "els => els.map(e => e.dataset.id)"
            )
            placeholder = page.locator(".card[data-image='img005'] .why").all_inner_texts()
            page.wait_for_function("Array.from(document.images).every(i => i.complete)")
            images_ok = page.evaluate("Array.from(document.images).every(i => i.naturalWidth > 0)")
            page.click("#next")
            seen.append(page.locator("#cards .pair.match").evaluate_all("els => els.map(e => e.dataset.id)"))
            info = page.inner_text("#pageinfo")
            pwned = page.evaluate("typeof window.__pwned")
            injected = page.locator("#cards script, #cards img[src='x'], #cards b").count()
        finally:
            browser.close()
    assert messages == [] and pwned == "undefined" and injected == 0
    assert first_all == PAGE_SIZE
    assert seen == pages and len(pages[1]) == sum(map(len, list(groups.values())[PAGE_SIZE:]))
    assert SCRIPT_CAPTION in captions and IMG_CAPTION in captions  # shown as text
    assert other == ["p001"]  # the image's other caption, folded away
    assert "p005" in pages[0] and len(placeholder) == 1 and placeholder[0].startswith("image_missing")
    assert images_ok and info.startswith(f"page 2 of 2: images {PAGE_SIZE + 1}–{len(groups)} of {len(groups)}")
