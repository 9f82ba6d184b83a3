"""Detectors (one file each, one result schema), typing and explanations.

Importing this package registers every detector in :data:`DETECTORS`.
"""

from misalignlab.detect import combined, neighbourhood, pair_loss, similarity  # noqa: F401
from misalignlab.detect.base import DETECTORS, DetectionResult, Detector, Evidence, PairView  # noqa: F401
