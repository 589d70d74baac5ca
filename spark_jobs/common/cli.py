"""Argument parsing that tolerates what Glue adds to argv.

Glue passes its own arguments (``--JOB_NAME``, ``--job-bookmark-option``, ...) next to
ours, so jobs use ``parse_known_args`` and ignore the rest.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence


def parse_job_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        logging.getLogger(parser.prog).info("ignoring platform arguments: %s", unknown)
    return args
