"""``python -m misalignlab.cli`` (what ``torchrun -m misalignlab.cli ...`` runs on every rank)."""

from misalignlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
