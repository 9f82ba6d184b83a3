"""The four misalignment kinds of an image–caption pair, one definition for the whole package.

``aligned``: the caption states what the image shows. ``incomplete``: it is true but leaves out
what captions of such images usually state (selection bias at the level of one pair).
``wrong``: a stated part contradicts the image (perturbation bias). ``unrelated``: the caption
belongs to another image (an outlier). Ground truth, detectors, reports and metrics all use these
strings; :class:`Kind` names them in code.
"""

from __future__ import annotations

from enum import Enum


class Kind(str, Enum):
    """A misalignment kind; compares equal to its string value (``Kind.WRONG == "wrong"``)."""

    ALIGNED = "aligned"
    INCOMPLETE = "incomplete"
    WRONG = "wrong"
    UNRELATED = "unrelated"

    def __str__(self) -> str:  # the plain value, also where numpy or f-strings convert it
        return self.value


KINDS: tuple[str, ...] = tuple(k.value for k in Kind)  # ("aligned", "incomplete", "wrong", "unrelated")
MISALIGNED: tuple[str, ...] = KINDS[1:]
