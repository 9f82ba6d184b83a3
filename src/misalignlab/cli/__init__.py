"""The ``misalignlab`` command: a thin typer app. Each command parses, builds a config and calls
one library function; the work lives in the library, which never imports this package.

Commands are grouped by stage in sibling modules that add themselves to :data:`app`.
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="misalignlab",
    help="Image–text contrastive learning when captions do not match their images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_invoked: list[str] = []


def invoked_argv() -> list[str]:
    """The command line of this invocation (also when run in-process via ``main([...])``)."""
    return list(_invoked) or list(sys.argv)


# Command modules register on `app` when imported; the order sets the order in --help.
from misalignlab.cli import sim  # noqa: E402,F401
from misalignlab.cli import data  # noqa: E402,F401
from misalignlab.cli import diagnose  # noqa: E402,F401
from misalignlab.cli import imagetext  # noqa: E402,F401
from misalignlab.cli import compare  # noqa: E402,F401


def main(argv: list[str] | None = None) -> int:
    """Entry point; ``main([...])`` runs a command in-process (used by the tests)."""
    # typer ≥ 0.2x vendors click; its exceptions live in typer._click.exceptions.
    from typer._click.exceptions import ClickException

    _invoked[:] = ["misalignlab", *(sys.argv[1:] if argv is None else argv)]
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
