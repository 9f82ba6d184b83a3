"""detect stage of misalignlab."""
