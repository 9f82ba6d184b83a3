"""report stage of misalignlab."""
