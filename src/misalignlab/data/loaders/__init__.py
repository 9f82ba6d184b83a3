"""Loaders for the benchmark datasets: MPI3D-Complex, Multimodal3DIdent and Fashion-MNIST.

All read local files only (nothing is downloaded) and never unpickle. User datasets go through
:mod:`misalignlab.data.ingest.stream` instead.
"""

from misalignlab.data.loaders.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    AttributeThresholds,
    FashionPairs,
    fashion_caption,
    fashion_mnist_pairs,
    find_fashion_mnist,
    load_fashion_mnist,
    make_fashion_pairs,
)
from misalignlab.data.loaders.idx import read_idx, write_idx
from misalignlab.data.loaders.mpi3d import (
    MPI3D_FACTORS,
    MPI3D_SIZES,
    MPI3DComplex,
    extract_npz_member,
    factors_of,
    index_of,
    open_npz_array,
)
from misalignlab.data.loaders.mpi3d_captions import CaptionSetting, MPI3DCaptions, make_captions, mpi3d_setting
from misalignlab.data.loaders.multimodal3dident import M3DISample, Multimodal3DIdent

__all__ = [
    "FASHION_MNIST_CLASSES",
    "MPI3D_FACTORS",
    "MPI3D_SIZES",
    "AttributeThresholds",
    "CaptionSetting",
    "FashionPairs",
    "M3DISample",
    "MPI3DCaptions",
    "MPI3DComplex",
    "Multimodal3DIdent",
    "extract_npz_member",
    "factors_of",
    "fashion_caption",
    "fashion_mnist_pairs",
    "find_fashion_mnist",
    "index_of",
    "load_fashion_mnist",
    "make_captions",
    "make_fashion_pairs",
    "mpi3d_setting",
    "open_npz_array",
    "read_idx",
    "write_idx",
]
