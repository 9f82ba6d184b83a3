"""Detectors (one file each, one result schema), slot typing and explanations.

Importing this package registers every detector in :data:`DETECTORS`.
"""

from misalignlab.detect import combined, neighbourhood, pair_loss, similarity, slot_swap  # noqa: F401
from misalignlab.detect.base import DETECTORS, DetectionResult, Detector, Evidence, PairView  # noqa: F401
