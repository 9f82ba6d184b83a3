"""data stage of misalignlab."""
