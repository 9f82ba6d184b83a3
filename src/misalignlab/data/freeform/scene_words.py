"""Word lists and sentence patterns of the free-form scene captions, styles ``a`` and ``b``.

Style ``a`` reads like an operator's notes (adjectives before the noun, position phrases such as
"near the top left", "conveyor" / "belt"); style ``b`` like a QA log (noun first, key=value fields,
semicolons, pipes and slashes, tags such as "upper-left", "track" / "surface" / "background"). The
two share no filler phrase and only part of their synonyms, so a method tuned on ``a`` can be
reported on ``b``. Slots: ``shape`` (noun), ``colour``, ``size`` (the core, stated by every
pattern), ``pos`` (``pos_y``, ``pos_x`` together; forms ``pos`` = a located phrase, ``pos:tag`` =
bare), ``belt`` (the background factor), ``defect`` (forms ``defect`` = adjective, ``defect:note``
= a remark). Value order follows :mod:`misalignlab.data.scenes.factors`.
"""

from __future__ import annotations

from misalignlab.data.freeform.phrasing import Slot, Style
from misalignlab.data.freeform.plant import Domain
from misalignlab.data.scenes.factors import FACTORS

SLOTS = (
    Slot("shape", ("shape",), always=True, droppable=True, noun=True),
    Slot("colour", ("colour",), always=True, droppable=True),
    Slot("size", ("size",), always=True, droppable=True),
    Slot("pos", ("pos_y", "pos_x"), always=False),
    Slot("belt", ("background",), always=False),
    Slot("defect", ("defect",), always=False),
)
DOMAIN = Domain(SLOTS, {f: FACTORS[f].values for s in SLOTS for f in s.factors})


# cells in pos_y · 3 + pos_x order: top left, top centre, ..., bottom right
_TAGS_A = (
    ("top left", "upper left", "top-left corner"),
    ("top centre", "top edge", "top middle"),
    ("top right", "upper right", "top-right corner"),
    ("left side", "centre left", "left edge"),
    ("centre", "middle", "dead centre"),
    ("right side", "centre right", "right edge"),
    ("bottom left", "lower left", "bottom-left corner"),
    ("bottom centre", "bottom edge", "bottom middle"),
    ("bottom right", "lower right", "bottom-right corner"),
)
_TAGS_B = (
    ("upper-left", "top-left", "upper-left quadrant"),
    ("top-centre", "upper-centre", "top of frame"),
    ("upper-right", "top-right", "upper-right quadrant"),
    ("mid-left", "left-centre", "left of frame"),
    ("mid-frame", "centre-centre", "centre of frame"),
    ("mid-right", "right-centre", "right of frame"),
    ("lower-left", "bottom-left", "lower-left quadrant"),
    ("bottom-centre", "lower-centre", "bottom of frame"),
    ("lower-right", "bottom-right", "lower-right quadrant"),
)
_PLACES_A = (  # located phrases, each cell with the prepositions that suit it
    (
        "in the top left",
        "at the top left",
        "near the upper left",
        "in the top-left corner",
        "up in the top-left corner",
    ),
    ("near the top", "at the top centre", "along the top edge", "near the top edge", "up at the top middle"),
    (
        "in the top right",
        "at the top right",
        "near the upper right",
        "in the top-right corner",
        "up in the top-right corner",
    ),
    ("on the left", "on the left side", "along the left edge", "near the left edge", "in the centre left"),
    ("in the middle", "at the centre", "in the dead centre", "near the centre", "in the middle of the frame"),
    ("on the right", "on the right side", "along the right edge", "near the right edge", "in the centre right"),
    (
        "in the bottom left",
        "at the bottom left",
        "near the lower left",
        "in the bottom-left corner",
        "down in the bottom-left corner",
    ),
    (
        "near the bottom",
        "at the bottom centre",
        "along the bottom edge",
        "near the bottom edge",
        "down at the bottom middle",
    ),
    (
        "in the bottom right",
        "at the bottom right",
        "near the lower right",
        "in the bottom-right corner",
        "down in the bottom-right corner",
    ),
)
_PLACES_B = (
    ("toward the upper-left", "in the upper-left quadrant", "at top-left"),
    ("toward the top-centre", "at the top of frame", "up at top-centre"),
    ("toward the upper-right", "in the upper-right quadrant", "at top-right"),
    ("toward the mid-left", "at the left of frame", "at left-centre"),
    ("at mid-frame", "at the centre of frame", "at centre-centre"),
    ("toward the mid-right", "at the right of frame", "at right-centre"),
    ("toward the lower-left", "in the lower-left quadrant", "at bottom-left"),
    ("toward the bottom-centre", "at the bottom of frame", "down at bottom-centre"),
    ("toward the lower-right", "in the lower-right quadrant", "at bottom-right"),
)

WORDS_A = {
    "shape": (
        ("bolt", "screw", "threaded bolt"),
        ("gear", "cog", "gearwheel"),
        ("bracket", "angle bracket", "mounting bracket"),
        ("nut", "hex nut", "locknut"),
        ("washer", "flat washer", "shim"),
        ("spring", "coil", "coil spring"),
    ),
    "colour": (
        ("red", "crimson", "scarlet"),
        ("orange", "amber", "tangerine"),
        ("yellow", "lemon", "mustard"),
        ("green", "emerald", "lime"),
        ("cyan", "teal", "aqua"),
        ("blue", "cobalt", "navy"),
        ("purple", "violet", "plum"),
        ("pink", "rose", "salmon"),
    ),
    "size": (("small", "tiny", "little"), ("medium", "mid-sized", "average-sized"), ("large", "big", "hefty")),
    "pos": _PLACES_A,
    "pos:tag": _TAGS_A,
    "belt": (("grey", "slate", "ash-grey"), ("black", "jet-black", "dark"), ("white", "pale", "off-white")),
    "defect": (
        ("intact", "undamaged", "flawless"),
        ("scratched", "scuffed", "scored"),
        ("dented", "dinged", "bashed"),
        ("cracked", "fractured", "split"),
    ),
    "defect:note": (
        ("no damage", "looks fine", "no visible flaws"),
        ("has a scratch", "shows scuff marks", "scratched up"),
        ("has a dent", "got a ding", "dent on one side"),
        ("has a crack", "crack visible", "cracked through"),
    ),
}
WORDS_B = {
    "shape": (
        ("screw", "machine bolt", "stud"),
        ("cog", "sprocket", "toothed wheel"),
        ("brace", "corner bracket", "mounting plate"),
        ("nut", "hexagon nut", "lock nut"),
        ("spacer", "shim ring", "ring washer"),
        ("spring", "coiled spring", "helical spring"),
    ),
    "colour": (
        ("red", "cherry", "ruby"),
        ("orange", "pumpkin", "apricot"),
        ("yellow", "canary", "golden"),
        ("green", "jade", "olive"),
        ("turquoise", "teal", "aquamarine"),
        ("blue", "sapphire", "royal blue"),
        ("violet", "grape", "amethyst"),
        ("pink", "fuchsia", "bubblegum"),
    ),
    "size": (
        ("compact", "miniature", "undersized"),
        ("regular", "mid-size", "moderate-size"),
        ("oversized", "chunky", "bulky"),
    ),
    "pos": _PLACES_B,
    "pos:tag": _TAGS_B,
    "belt": (("gray", "pewter", "steel-grey"), ("black", "charcoal", "inky"), ("snow-white", "chalk-white", "ivory")),
    "defect": (
        ("pristine", "unmarked", "intact"),
        ("scraped", "scratched", "abraded"),
        ("dented", "battered", "bumped"),
        ("cracked", "fissured", "broken"),
    ),
    "defect:note": (
        ("no defects found", "clean surface", "passes visual"),
        ("scratch on surface", "scrape marks present", "with a scratch"),
        ("dent present", "with a dent", "dent on rim"),
        ("crack present", "with a crack", "hairline crack"),
    ),
}

PATTERNS_A = (
    "{lead} {size} {colour} {shape} {pos}, {belt} conveyor, {defect}",
    "{lead} {defect} {size} {colour} {shape} {pos} on a {belt} belt",
    "{lead} {size} {colour} {shape} on the {belt} belt, {pos}, {defect:note}",
    "{pos}: {size} {colour} {shape}, {defect}, {belt} conveyor - {tail}",
    "{lead} there's a {size} {colour} {shape} {pos}, {defect:note}, belt is {belt}",
    "{lead} a {colour} {shape}[, {size} one,] sitting {pos} on the {belt} conveyor, {defect}",
    "{lead} {defect} {shape}, {colour}, {size} - {pos}, {belt} belt",
    "{size} {colour} {shape}, {defect}, {pos} ({tail})",
    "{lead} {size} {colour} {shape} {pos}",
    "{lead} {size} {colour} {shape} on a {belt} belt",
    "{lead} {size} {colour} {shape}, {defect:note}",
    "{size} {colour} {shape} - {tail}",
    "{lead} {shape}[, colour: {colour}][, size: {size}], {pos:tag}, belt: {belt}, condition: {defect}",
    "{lead} spotted a {defect} {shape}[ in {colour}] {pos}[, {size} one], {belt} conveyor",
    "{lead} {colour} {shape}[ ({size})] {pos}, {defect:note}, {belt} belt",
    "{pos} there is a {size} {colour} {shape}, {defect}, on a {belt} conveyor",
    "{lead} {belt} belt with a {size} {colour} {shape} {pos}; {defect:note}",
    "{lead} {size} {shape}[, painted {colour},] {defect}, {pos} on the {belt} belt",
    "{lead} the {size} {colour} {shape} {pos} - {defect:note} - {belt} belt",
    "{lead} {colour} {size} {shape}, {belt} conveyor, {pos:tag}",
    "{lead} {defect} {colour} {shape} {pos}[, size: {size}]",
    "{lead} {size}, {colour}, {defect} {shape} {pos} on the {belt} belt, {tail}",
    "{lead} {shape} ({size}, {colour}) {pos}, {defect}",
    "{lead} {size} {shape} {pos}[, colour: {colour}], {belt} belt, {defect:note}",
    "{lead} {belt} conveyor, {pos:tag}: {size} {colour} {shape}, {defect}",
    "{lead} {defect} {shape} {pos}[, it's {colour}][, {size} overall]",
    "{lead} {colour} {shape}, {size}, {defect:note}",
    "{lead} {pos} a {colour} {size} {shape}",
    "{lead} {size} {colour} {shape} on {belt} belt, {defect}",
    "{lead} {size} {colour} {shape}, {defect}, {pos}, {tail}",
    "{lead} {colour} {shape}[, looks {size}], {belt} belt, {pos}, {defect:note}",
    "{lead} {pos:tag}, {belt} belt: one {size} {colour} {shape}, {defect}",
    "{size} {colour} {shape} {pos} again, {defect}, {tail}",
    "{lead} {size} {defect} {colour} {shape} on the {belt} belt, {pos}",
)
PATTERNS_B = (
    "{lead} {shape}[; colour={colour}][; size={size}]; pos={pos:tag}; bg={belt}; {defect}",
    "{lead} {shape}[ in {colour}], {size}, {pos:tag}, on {belt} track, {defect}",
    "{pos:tag} | {shape}[ | {colour}][ | {size}] | {belt} surface | {defect} | {tail}",
    "{lead} {shape} ({colour}, {size}) {pos}, {belt} background, {defect:note}",
    "{lead} {shape}[, {colour} finish][, {size} build], {pos}, {belt} track, {defect:note}",
    "{lead} seen at {pos:tag}: {shape}, {colour}, {size}; {defect}; {belt} track",
    "{lead} {defect} {shape}[ of {colour} colour], {size}; located {pos:tag} over {belt} surface",
    "{pos:tag}: {colour} {shape}[, {size} build]; {tail}",
    "{lead} {shape}[, {colour}][ / {size}]; {tail}",
    "{lead} {shape} — {colour}, {size} — {belt} surface",
    "{lead} {shape} — {colour}, {size} — {defect:note}",
    "{lead} {shape} at {pos:tag}[ ({colour})][, {size} build], {defect}",
    "{lead} {belt} track; {shape}: {colour}, {size}; {pos:tag}; {defect}",
    "{lead} item type {shape}[, colour {colour}][, size class {size}], on {belt} surface {pos}",
    "{lead} {shape}[ ({size})][ in {colour}] {pos}, {defect}, {belt} background",
    "{lead} found: {shape}, {colour}, {size}. status: {defect}. bg: {belt}. {pos:tag}",
    "{lead} {shape}[ / {colour}][ / {size}] / {pos:tag} / {belt} bg / {defect}",
    "{lead} {defect} {shape} ([{size} build, ]{colour}) {pos}",
    "{pos:tag} — {shape}[, {colour}][, {size}] on {belt} track; {defect}; {tail}",
    "{lead} {shape}; {colour}; {size}; {belt} surface",
    "{lead} {pos:tag} {shape}[ in {colour}][, {size} build]",
    "{lead} {shape} sample[, {colour}][, {size}], {defect:note}",
    "{lead} {colour} {shape}[, {size} build], {pos}, {belt} track, {defect}",
    "{lead} {size} {shape}[ in {colour}] on a {belt} track {pos}. {defect:note}",
    "{lead} reported {defect} {shape}[; {colour}][; {size}]; bg {belt}; {pos:tag}",
    "{lead} {shape} — {size}, {colour} — {pos:tag}, {belt} background — {defect:note}",
    "{lead} {shape} spotted {pos}: {colour}, {size}, {defect}",
    "{lead} subject {shape}[, shade {colour}][, size {size}], {pos}, {belt} track, {defect}",
    "{lead} ({pos:tag}) {shape}, {colour}, {size}, {defect}, {belt} surface",
    "{lead} {shape} x1[, {colour}][, {size}], {defect}; {tail}",
    "{lead} {shape}, {colour}, {size}; {belt} track; {pos:tag}; {tail}",
    "{lead} {defect} — {shape}, {colour}, {size}, {pos}, {belt} background",
    "{lead} {shape}, {colour}, {size}",
)


def _phrases(text: str) -> tuple[str, ...]:
    """Filler phrases written one after another, separated by " | " (no filler holds a pipe)."""
    return tuple(text.split(" | "))


STYLE_A = Style(
    "a",
    PATTERNS_A,
    WORDS_A,
    leads=_phrases(
        "operator note: | op note: | shift log: | line 3: | snapshot: | part check: | quick note: "
        "| day shift - | station 2: | fyi: | component log:"
    ),
    tails=_phrases(
        "see photo | on the conveyor | pic attached | check later | flagged by day crew | ok to ship? | piece count ok"
    ),
    generic=("part", "piece", "component"),
)
STYLE_B = Style(
    "b",
    PATTERNS_B,
    WORDS_B,
    leads=_phrases(
        "QA log — | inspection record: | frame 0412 — | batch 17 QA: | item record — | audit entry: "
        "| QC ticket #88: | cam 4 capture: | logged: | workpiece scan:"
    ),
    tails=_phrases(
        "logged for review | per QA spec | image on file | awaiting sign-off | end of record | object id on file"
    ),
    generic=("item", "workpiece", "object"),
)
STYLES = {"a": STYLE_A, "b": STYLE_B}
