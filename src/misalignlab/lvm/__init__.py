"""lvm stage of misalignlab."""
