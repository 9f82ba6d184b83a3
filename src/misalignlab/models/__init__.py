"""models stage of misalignlab."""
