"""Benchmarks: one per pipeline, each against the reference approach in the same run."""

from __future__ import annotations

import json
from pathlib import Path


def write_results(out: Path, results: dict) -> None:
    """Write a benchmark's figures as JSON (creating the folder) and echo them."""
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    out.write_text(text)
    print(text, end="")
