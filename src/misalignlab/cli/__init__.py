"""The ``misalignlab`` command: a thin typer app. Each command parses, builds a config and calls
one library function; the work lives in the library, which never imports this package.

Commands are grouped by stage in sibling modules that add themselves to :data:`app`.
"""

from __future__ import annotations

import sys

import typer

# Command modules register on `app` when imported; the order sets the order in --help.
from misalignlab.cli import (  # noqa: F401, I001
    compare,
    data,
    diagnose,
    export,
    imagetext,
    pilot,
    profiles,
    sim,
)
from misalignlab.cli.app import _invoked, app

# Commands that run data-parallel under torchrun (rank 0 writes); any other command refuses to run
# in a job of several processes, whose ranks would all write the same files.
DISTRIBUTED_COMMANDS = ("imagetext", "diagnose")


def main(argv: list[str] | None = None) -> int:
    """Entry point; ``main([...])`` runs a command in-process (used by the tests).

    Under ``torchrun`` it joins the job first (gloo on CPU, nccl on CUDA) and leaves it afterwards.
    """
    from misalignlab.train import distributed

    args = sys.argv[1:] if argv is None else list(argv)
    _invoked[:] = ["misalignlab", *args]
    if not distributed.launched_by_torchrun() or "--help" in args:
        return _run(argv)
    command = next((a for a in args if not a.startswith("-")), "")
    if command not in DISTRIBUTED_COMMANDS:
        typer.echo(
            f"error: {command!r} runs in one process; under torchrun use: {', '.join(DISTRIBUTED_COMMANDS)}", err=True
        )
        return 2
    joined = not distributed.current().active
    distributed.init_distributed()
    status = _run(argv)
    if joined and status == 0:  # a failed rank skips the final barrier; torchrun stops the others
        distributed.shutdown()
    return status


def _run(argv: list[str] | None) -> int:
    # typer ≥ 0.2x vendors click; its exceptions live in typer._click.exceptions.
    from typer._click.exceptions import ClickException

    try:
        result = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:  # --help and explicit exits
        return int(exc.exit_code or 0)
    except ClickException as exc:
        exc.show()
        return exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 1
    except ValueError as exc:  # configuration errors from the library: short message, no traceback
        typer.echo(f"error: {exc}", err=True)
        return 2
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


def console() -> None:
    """Console-script wrapper: exit with :func:`main`'s status."""
    raise SystemExit(main())
