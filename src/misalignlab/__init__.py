"""misalignlab: image–text contrastive learning when captions do not match their images.

The package follows the data flow lvm → data → models → train → detect → strategies → evaluate →
pilot → report. Library modules never import :mod:`misalignlab.cli`.
"""

__version__ = "0.1.0"
