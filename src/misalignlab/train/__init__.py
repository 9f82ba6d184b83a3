"""train stage of misalignlab."""
