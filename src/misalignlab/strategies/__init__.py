"""Training strategies: negate (filter, reweight, robust) and embrace (augment, multipositive).

Importing this package registers every strategy in :data:`STRATEGIES`.
"""

from misalignlab.strategies import embrace, negate  # noqa: F401
from misalignlab.strategies.base import STRATEGIES, PairSet, Strategy, build_strategy  # noqa: F401
