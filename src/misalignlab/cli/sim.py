"""Simulation-lab commands: ``simulate`` and ``sweep`` (filled in by the simulation lab)."""
from misalignlab.cli import app  # noqa: F401
