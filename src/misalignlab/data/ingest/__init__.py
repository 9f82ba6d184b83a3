"""Reading a user's image–caption dataset: layouts, formats, row checks, quarantine, decoded-image store.

Flow: :mod:`.detect_format` (which layout a path has) → one streaming reader per format family
(:mod:`.csv_jsonl`, :mod:`.parquet`, :mod:`.arrow`, :mod:`.tar`, :mod:`.files`, :mod:`.coco`) →
:mod:`.validate` and :mod:`.images` (row checks, safe decoding) → :mod:`.stream` (:func:`open_pairs`:
chunks of valid pairs, bad rows to :mod:`.quarantine`) → :mod:`.image_store` (decoded images on
disk, memory-mapped). :mod:`.reread` re-reads one image from its reference for report thumbnails.
"""

from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.records import ImageRef, IngestError, SourceRow
from misalignlab.data.ingest.reread import reread_image
from misalignlab.data.ingest.stream import PairChunk, PairStream, open_pairs

__all__ = [
    "ImageRef",
    "IngestCfg",
    "IngestError",
    "PairChunk",
    "PairStream",
    "SourceRow",
    "open_pairs",
    "reread_image",
]
