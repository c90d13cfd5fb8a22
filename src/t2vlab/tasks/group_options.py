"""Config-group options on the command line, checked before Hydra composes anything.

Hydra itself refuses `model=nonexistent` with a multi-line message, exit code 1 and a hint about
HYDRA_FULL_ERROR as its last line; every other bad input here ends with one `error:` line and exit code 2. This
check gives unknown options the same ending, listing the options the group has.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_SWEEP_FUNCTION = re.compile(r"^\w+\(")  # choice(...), range(...), glob(...): the sweeper's, left to Hydra


def group_options(search_path: list[Path], group: str) -> list[str] | None:
    """The options of `group` (e.g. "model", "experiment") across the search path; None when no such group."""
    found, any_group = set(), False
    for root in search_path:
        folder = root / group
        if folder.is_dir():
            any_group = True
            found |= {str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.yaml")}
    return sorted(found) if any_group else None


def search_path(conf_dir: Path, argv: list[str]) -> list[Path]:
    """The entry point's conf/ and the file:// folders of a hydra.searchpath=[...] override."""
    roots = [conf_dir]
    for arg in argv:
        if arg.startswith("hydra.searchpath="):
            roots += [Path(p) for p in re.findall(r"file://([^,\]\s'\"]+)", arg)]
    return roots


def unknown_option(argv: list[str], conf_dir: Path) -> str | None:
    """The error line for the first `group=option` naming an option its group lacks, else None."""
    roots = search_path(conf_dir, argv)
    for arg in argv:
        if "=" not in arg or arg.startswith(("-", "~", "hydra")):
            continue
        key, value = arg.split("=", 1)
        group = key.lstrip("+")
        if "." in group or not value or value == "null" or _SWEEP_FUNCTION.match(value):
            continue
        options = group_options(roots, group)
        if options is None:
            continue
        for option in value.split(","):  # a multirun lists several
            if option not in options:
                return f"error: {group}={option} is invalid; allowed: {', '.join(options)}"
    return None


def refuse_unknown_options(conf_dir: Path, argv: list[str] | None = None) -> None:
    """Exit with code 2 and one line before Hydra starts when the command line names an unknown option."""
    message = unknown_option(sys.argv[1:] if argv is None else argv, conf_dir)
    if message is not None:
        print(message, file=sys.stderr)
        sys.exit(2)
