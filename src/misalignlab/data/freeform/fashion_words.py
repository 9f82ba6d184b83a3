"""Word lists and sentence patterns of the free-form Fashion-MNIST product captions, styles ``a`` and ``b``.

Style ``a`` reads like a shop catalogue ("catalog picture: navy coat, roomy fit — studio shot");
style ``b`` like a resale post ("for sale: parka / deep / loose, pickup only"). They share no
filler phrase and only part of their synonyms. Slots: ``class`` (the noun, stated by every
pattern, never left out), ``tone`` (dark, light) and ``size`` (small, large), each stated by most
patterns; every pattern states at least one of tone and size, so any caption can be made
incomplete. Value order follows :mod:`misalignlab.data.loaders.fashion_mnist`.
"""

from __future__ import annotations

from misalignlab.data.freeform.phrasing import Slot, Style
from misalignlab.data.freeform.plant import Domain
from misalignlab.data.loaders.fashion_mnist import FASHION_MNIST_CLASSES, SIZES, TONES

SLOTS = (
    Slot("class", ("class",), always=True, noun=True),
    Slot("tone", ("tone",), droppable=True),
    Slot("size", ("size",), droppable=True),
)
DOMAIN = Domain(SLOTS, {"class": FASHION_MNIST_CLASSES, "tone": TONES, "size": SIZES})

WORDS_A = {
    "class": (
        ("t-shirt", "tee", "short-sleeve top"),
        ("trousers", "pants", "slacks"),
        ("pullover", "sweater", "jumper"),
        ("dress", "frock", "gown"),
        ("coat", "overcoat", "jacket"),
        ("sandal", "strappy sandal", "flip-flop"),
        ("shirt", "button-up", "blouse"),
        ("sneaker", "trainer", "running shoe"),
        ("bag", "handbag", "tote"),
        ("ankle boot", "bootie", "short boot"),
    ),
    "tone": (("dark", "navy", "charcoal"), ("light", "pale", "cream")),
    "size": (("small", "compact", "petite"), ("large", "roomy", "oversized")),
}
WORDS_B = {
    "class": (
        ("top", "crew-neck tee", "graphic tee"),
        ("chinos", "joggers", "pair of trousers"),
        ("knit sweater", "sweatshirt", "jumper"),
        ("sundress", "midi dress", "dress"),
        ("parka", "trench coat", "coat"),
        ("slide sandal", "open-toe sandal", "sandal"),
        ("button-down", "oxford shirt", "shirt"),
        ("sports shoe", "tennis shoe", "sneaker"),
        ("purse", "shoulder bag", "bag"),
        ("chelsea boot", "boot", "ankle boot"),
    ),
    "tone": (("deep", "black", "dark-toned"), ("pale", "white", "pastel")),
    "size": (("slim", "snug", "small"), ("big", "loose", "oversized")),
}

PATTERNS_A = (
    "{lead} {tone} {class}[, {size} fit], {tail}",
    "listing photo of a {size} {tone} {class}",
    "{lead} {class}[ in a {tone} shade][, {size} fit] — {tail}",
    "{lead} {size} {tone} {class}",
    "{lead} {tone} {class}, {tail}",
    "{lead} {size} {class} — {tail}",
    "{lead} a {tone} {class}[ with a {size} cut]",
    "{class}[, colour: {tone}][, fit: {size}] ({tail})",
    "{lead} our {size} {tone} {class}, {tail}",
    "{tone} {class}[, {size}] — {tail}",
    "{lead} {class}[ in a {tone} tone][, size {size}]",
    "{lead} {size} {class}[ in a {tone} shade]",
    "{lead} {class} ({tone}, {size}), {tail}",
    "shown: {size} {tone} {class} — {tail}",
    "{lead} {class}[, {tone} colourway][, {size} fit]",
    "{lead} a {size} {class}[, shade {tone}], {tail}",
    "{lead} {tone} {class}[ ({size} fit)]",
    "{lead} {size} {tone} {class} — {tail}",
    "{size} {tone} {class} for everyday wear",
    "{lead} {class}[, available in {tone}], {tail}",
    "{lead} {class}[, size {size}] — {tail}",
    "{lead} {size} {class}[ in a {tone} hue]",
    "{lead} {tone} {size} {class}, {tail}",
    "see the {tone} {class}[, {size} cut] — {tail}",
    "{lead} {class}[ — tone: {tone}][ — fit: {size}]",
    "{lead} {size} {class}, {tone}, {tail}",
    "{lead} {class}: {size}, {tone}",
    "{lead} a {tone} {class}[ that fits {size}]",
    "{lead} {size} {tone} {class} against a plain wall",
    "{lead} {tone} {class}",
    "{lead} {size} {class}",
    "{lead} {class} ({size}), {tone}",
)
PATTERNS_B = (
    "{lead} {class}, {tone}, {size}, {tail}",
    "{lead} {class}[ / {tone}][ / {size}]",
    "{lead} {class} — {tone}, {size}; {tail}",
    "{lead} selling my {size} {tone} {class}, {tail}",
    "{lead} {class}[ | shade={tone}][ | fit={size}]",
    "{tone} {class} for sale[, runs {size}], {tail}",
    "{lead} {class}[ in a {tone} colour], {tail}",
    "{lead} {class}[ ({size})] — {tail}",
    "{lead} {class}[; colour {tone}][; fits {size}]",
    "{lead} {size} {class}[, {tone} colour]; {tail}",
    "{lead} {class} x1[ ({tone})][, {size}]",
    "{lead} {class}[: {tone}][, {size} fit]",
    "{lead} {tone} {class} ({size}), {tail}",
    "{lead} {class}[, {tone}][, {size}] — {tail}",
    "{lead} {class} —[ {size}][, {tone}] — {tail}",
    "{lead} up for grabs: {class}, {tone}, {size}",
    "{lead} {class} in great shape, {tone}, {size}",
    "{lead} {class} ([size {size}, ][colour {tone}])",
    "{lead} {class}[, {size} one], {tone} — {tail}",
    "{lead} {class}[ | {tone}] | {tail}",
    "{lead} {class}[ | {size}] | {tail}",
    "{lead} {class}, {tone}",
    "{lead} {class}[, {size} cut]",
    "{lead} {class}[ — {tone}][ — {size}] — {tail}",
    "{lead} {class}[, colour={tone}][, size={size}]",
    "{lead} barely used {class}, {tone}, {size}",
    "{lead} {class}; {tone}; {size}; {tail}",
    "{lead} {class}[, {tone} shade][ and {size} fit]",
    "{lead} {class}:[ {size} fit][ in {tone}]",
    "{tone} {class}[, size {size}], {tail}",
    "{lead} {class}[ ({tone})] {tail}",
    "{lead} {size} {class}, {tail}",
)

STYLE_A = Style(
    "a",
    PATTERNS_A,
    WORDS_A,
    leads=(
        "catalog picture:",
        "listing photo:",
        "new arrival:",
        "shop item:",
        "product shot:",
        "just in:",
        "web store -",
        "lookbook:",
    ),
    tails=("studio shot", "folded on a table", "on a hanger", "front view", "flat lay", "free returns"),
    plural=frozenset({"trousers", "pants", "slacks"}),
)
STYLE_B = Style(
    "b",
    PATTERNS_B,
    WORDS_B,
    leads=(
        "resale post —",
        "for sale:",
        "marketplace ad:",
        "thrift find:",
        "secondhand listing —",
        "closet clear-out:",
        "post #2291:",
    ),
    tails=("worn twice", "pickup only", "photo taken at home", "no trades", "ships next day", "price firm"),
    plural=frozenset({"chinos", "joggers"}),
)
STYLES = {"a": STYLE_A, "b": STYLE_B}
