"""pilot stage of misalignlab."""
