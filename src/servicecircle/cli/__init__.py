"""The ``servicecircle`` command line.

User mistakes (a missing file, a bad tier, an empty area…) print one line and exit with code 2;
only a bug shows a traceback. :mod:`.options` declares the options (shared ones once),
:mod:`.commands` turns them into workflow calls, :mod:`.printing` prints the results.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from .._errors import ServiceCircleError
from .commands import COMMANDS, default_demo_out
from .options import build_parser

__all__ = ["build_parser", "console", "default_demo_out", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``servicecircle`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (
        logging.ERROR
        if args.quiet
        else (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose or 0, 2)]
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("servicecircle").setLevel(level)
    # third-party warnings (deprecations in pyrosm, osmnx…) are not the user's business; -v
    # shows them as log lines
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.WARNING if args.verbose else logging.ERROR)
    try:
        return COMMANDS[args.command](args)
    except ServiceCircleError as err:
        print(f"servicecircle: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("servicecircle: interrupted; the output folder is as it was", file=sys.stderr)
        return 130


PIPE_CLOSED = 141
"""Exit code when the program's output was piped to a reader that stopped reading (as for a
process ended by SIGPIPE, 128 + 13); what the run wrote before that is all there."""


def console() -> NoReturn:
    """The ``servicecircle`` program: :func:`main` run as a short-lived process.

    A run makes millions of objects and few reference cycles, so the cyclic collector runs
    rarely (what was imported before the run is not scanned again), and once :func:`main` has
    returned — every file written and closed, every helper process joined — the process ends
    without freeing its objects one by one (the areas read are held until then,
    :data:`~servicecircle.cli.commands.HELD_UNTIL_EXIT`). Together this saves about a fifth of
    a city run. A reader that stops reading (``| head -1``) ends it with :data:`PIPE_CLOSED`
    and no traceback; any other exception (a bug) leaves the normal way, with its traceback.
    """
    from . import commands

    gc.set_threshold(*commands.SHORT_RUN_GC)
    gc.freeze()
    commands.HELD_UNTIL_EXIT = []
    try:
        code = main()
    except BrokenPipeError:  # the reader went away (``| head -1``): the files are written
        code = PIPE_CLOSED
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # under a profiler or coverage tool: let it write its results
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # (None: started with the stream closed)
                stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            code = code or PIPE_CLOSED
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
