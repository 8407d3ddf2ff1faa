"""Asking a person whether a lease's holder on another machine is gone (`entra push`, `entra
sync`, `housekeeping` with --take-over-lease): oathdesk cannot see another machine's process."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from oathdesk.errors import InvalidInput


def confirm_take_over(yes: bool, job: str = "push") -> Callable[[Any], bool]:
    """Whether to take over a lease held from another machine: oathdesk cannot see whether that
    run is gone, so a person says so (or --yes, for a script whose author made sure)."""

    def confirm(holder: Any) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise InvalidInput(
                f"the {job} by {holder.describe()} holds the vault's lease; cannot ask whether it "
                "is gone without a terminal: add --yes once you are sure it is"
            )
        return click.confirm(
            f"the {job} by {holder.describe()} holds the vault's lease. Take it over? Only if "
            f"that run is gone (its machine off, its process killed): two at once "
            f"({job}) would act twice",
            default=False,
            err=True,
        )

    return confirm
