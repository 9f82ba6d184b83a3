"""strategies stage of misalignlab."""
