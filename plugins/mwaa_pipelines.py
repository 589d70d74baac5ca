"""The product's Airflow plugin (shipped to MWAA as plugins.zip).

MWAA's guidance keeps plugins.zip for UI extensions (extra links, listeners); operators
travel under dags/. This plugin is the single place such extensions are defined.

Extra links, Airflow 3 style: an operator lists a link in ``operator_extra_links``; when
the task ends, the worker asks the link for its URL and stores it in XCom, and the UI
reads it from there (the API server never imports operator code). The links shown:

- ``ChosenSubnetLink`` (defined here): the subnet the healthiest-subnet operator chose,
  in the VPC console;
- the Amazon provider's ``GlueJobRunDetailsLink`` (the Glue job run in the Glue console)
  and ``EmrServerlessDashboardLink`` (the job run's Spark UI dashboard), which our
  operators fill the way the provider's own operators do.

Airflow 3 needs no registration for such links (the serialized DAG names each link and its
XCom key). Plugins' folder is on ``sys.path`` in every Airflow process, which is how the
operators import this module (``operators/links.py``).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink


class ChosenSubnetLink(BaseAwsLink):
    """The subnet of the connection a Glue job was started on (or would be, in a dry run)."""

    name = "Chosen subnet"
    key = "mwaa_pipelines_chosen_subnet"
    format_str = BASE_AWS_CONSOLE_LINK + "/vpcconsole/home?region={region_name}#SubnetDetails:subnetId={subnet_id}"


class MwaaPipelinesPlugin(AirflowPlugin):
    name = "mwaa_pipelines"
