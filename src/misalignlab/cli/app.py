"""The typer app every command registers on, and the command line of the current invocation."""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="misalignlab",
    help="Image–text contrastive learning when captions do not match their images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "misalignlab[hf]" is an install name, not markup
)

_invoked: list[str] = []


def invoked_argv() -> list[str]:
    """The command line of this invocation (also when run in-process via ``main([...])``)."""
    return list(_invoked) or list(sys.argv)
