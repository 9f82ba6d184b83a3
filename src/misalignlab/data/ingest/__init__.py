"""Reading a user's image–caption dataset: formats, row checks, quarantine, decoded-image store.

Flow: :mod:`.manifests` (one streaming reader per format) → :mod:`.validate` and :mod:`.images`
(row checks, safe decoding) → :mod:`.stream` (:func:`open_pairs`: chunks of valid pairs, bad rows
to :mod:`.quarantine`) → :mod:`.image_store` (decoded images on disk, memory-mapped).
"""

from misalignlab.data.ingest.stream import IngestCfg, PairChunk, PairStream, open_pairs

__all__ = ["IngestCfg", "PairChunk", "PairStream", "open_pairs"]
