"""evaluate stage of misalignlab."""
