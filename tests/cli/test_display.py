"""Stage progress bars: a stage's clock stops when the next stage reports."""

import io

from rich.console import Console
from rich.progress import Progress

from misalignlab.cli.display import StageBars


def _task(progress, name):
    return next(t for t in progress.tasks if t.description == name)


def test_an_open_ended_stage_stops_when_the_next_begins_and_shows_what_it_did():
    progress = Progress(console=Console(file=io.StringIO()))
    bars = StageBars(progress)
    bars("reading", 4000, 0)  # a stream: no total
    reading = _task(progress, "reading")
    assert reading.stop_time is None and reading.total is None
    bars("embedding", 0, 2)
    assert reading.stop_time is not None and reading.total == 4000 and reading.finished
    frozen = reading.elapsed
    bars("embedding", 2, 2)
    assert reading.elapsed == frozen  # its clock no longer runs with the later stages
    bars("reading", 10, 0)  # the stage comes back: a fresh bar, its clock running
    again = _task(progress, "reading")
    assert again.id != reading.id and again.stop_time is None and again.completed == 10 and again.total is None
    assert [t.description for t in progress.tasks] == ["embedding", "reading"] and _task(progress, "embedding").finished
