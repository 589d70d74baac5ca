"""The console links our operators show in the UI (defined in the plugin, see plugins/).

Every Airflow process has the plugins folder on ``sys.path``; a plain Python process run
from the repository (tests, benchmarks) finds the repository's ``plugins/`` instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

from airflow.providers.amazon.aws.links.emr import EmrServerlessDashboardLink
from airflow.providers.amazon.aws.links.glue import GlueJobRunDetailsLink

try:
    from mwaa_pipelines import ChosenSubnetLink
except ImportError:
    _REPO_PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
    if not (_REPO_PLUGINS / "mwaa_pipelines.py").exists():
        raise
    sys.path.append(str(_REPO_PLUGINS))
    from mwaa_pipelines import ChosenSubnetLink

__all__ = ["ChosenSubnetLink", "EmrServerlessDashboardLink", "GlueJobRunDetailsLink"]
