"""The product's Airflow plugin (shipped to MWAA as plugins.zip).

MWAA's guidance keeps plugins.zip for UI extensions (extra links, listeners); operators
travel under dags/. This plugin is the single place such extensions are registered.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class MwaaPipelinesPlugin(AirflowPlugin):
    name = "mwaa_pipelines"
