"""``misalignlab pilot``'s options: the diagnosis flags default as ``diagnose``'s, and a bad ``--test`` is named."""

import typer

from misalignlab.cli import main
from misalignlab.cli.app import app


def defaults(command: str) -> dict[str, object]:
    return {p.name: p.default for p in typer.main.get_command(app).commands[command].params}


def test_backbone_and_schema_default_as_in_diagnose():
    pilot, diagnose = defaults("pilot"), defaults("diagnose")
    assert pilot["backbone"] == diagnose["backbone"] == "auto"
    assert pilot["schema"] == diagnose["schema"] == "auto"
    assert "test" in pilot


def test_a_bad_test_path_is_named_before_any_work(tmp_path, capsys):
    missing = tmp_path / "checked.csv"
    data = tmp_path / "pairs.csv"
    data.write_text("image,caption\n")
    assert main(["pilot", str(data), "--test", str(missing), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "checked.csv" in err and "no such file" in err
    assert not (tmp_path / "o" / "report.json").exists()
    assert main(["pilot", "--test", str(data), "--out", str(tmp_path / "o")]) == 2  # built-in data: truth known
    assert "rendered scenes whose truth is known" in capsys.readouterr().err
