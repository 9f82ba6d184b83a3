"""Wording peers: a caption whose writer left a slot out reads like its own template, marks and all."""

from __future__ import annotations

import numpy as np

from misalignlab.detect.slots import SlotSchema
from misalignlab.detect.stated import parse_captions
from misalignlab.detect.wording import _tidy_marks, peer_shares

SCHEMA = SlotSchema(
    {
        "shape": {"gear": "gear", "nut": "nut", "spring": "spring"},
        "colour": {"red": "red", "blue": "blue", "green": "green"},
        "size": {"small": "small", "large": "large"},
    }
)


def test_tidy_marks_removes_what_a_cut_leaves_behind() -> None:
    assert _tidy_marks(["gear", ",", ",", "small"]) == ["gear", ",", "small"]
    assert _tidy_marks(["jumper", "(", ")", ",", "loose"]) == ["jumper", ",", "loose"]
    assert _tidy_marks(["gear", "(", "red", ")", "—", "small", "."]) == [
        "gear",
        "(",
        "red",
        ")",
        "small",
    ]  # a run of marks reads as its first
    assert _tidy_marks(["tag", ":", "gear", "—", "small"]) == [
        "tag",
        ":",
        "gear",
        "—",
        "small",
    ]  # marks between words stay


def _captions(rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Two templates, one that always states the colour (in brackets or a list) and one that never does;
    the first template's writer dropped the colour in about every tenth caption."""
    shapes, colours, sizes = ["gear", "nut", "spring"], ["red", "blue", "green"], ["small", "large"]
    caps, dropped = [], []
    for i in range(600):
        sh, co, si = rng.choice(shapes), rng.choice(colours), rng.choice(sizes)
        if i % 3 == 0:  # never states the colour
            caps.append(f"tray photo — {sh} | size {si}")
            dropped.append(False)
        elif i % 3 == 1:
            drop = rng.random() < 0.1
            caps.append(f"inspection log: {sh} ({si})" if drop else f"inspection log: {sh} ({si}), {co}")
            dropped.append(drop)
        else:
            drop = rng.random() < 0.1
            caps.append(f"part {sh}; finish {si}" if drop else f"part {sh}; finish {si}; {co}")
            dropped.append(drop)
    return caps, np.array(dropped)


def test_dropped_slot_reads_like_its_template_and_never_stated_does_not() -> None:
    caps, dropped = _captions(np.random.default_rng(0))
    stated = parse_captions(SCHEMA, caps)
    colour = stated.slots.index("colour")
    shares = peer_shares(caps, stated, [colour], seed=0)[:, colour]
    unstated = stated.said[:, colour] < 0
    assert unstated.sum() == (np.arange(600) % 3 == 0).sum() + dropped.sum()
    assert np.median(shares[dropped]) >= 0.8  # peers: its own template, which states the colour 9 times in 10
    never = unstated & ~dropped
    assert np.quantile(shares[never], 0.9) <= 0.1  # peers are the template that never states it
