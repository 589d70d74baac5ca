"""Where the local stack keeps things.

Everything the stack creates lives under one ignored state folder (``.state/`` in the
project root, or ``$MWAA_PIPELINES_STATE``), so ``make clean`` returns the machine to
a fresh clone. A running stack keeps its servers' files in a folder of its own
(``.state/stack`` by default; tests use throw-away ones under ``.state/tmp``).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("MWAA_PIPELINES_STATE", ROOT / ".state")).resolve()
JARS = STATE / "jars"
DEFAULT_STACK_HOME = STATE / "stack"
TMP = STATE / "tmp"

REGION = "us-east-1"
