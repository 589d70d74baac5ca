import json

import pytest

from operators.spark.settings import DEFAULTS, SettingsError, merge_settings


def test_defaults_are_glue_for_production():
    assert merge_settings(None, None, None).platform == "glue"


def test_precedence_variable_then_params_then_explicit():
    cfg = json.dumps({"scripts_uri": "s3://b/jobs/", "glue_version": "5.0"})
    s = merge_settings(cfg, "emr_serverless", {"platform": "default"})
    assert s.platform == "emr_serverless"
    assert s.scripts_uri == "s3://b/jobs"  # trailing slash dropped
    assert merge_settings(cfg, "emr_serverless", {"platform": "local"}).platform == "local"
    assert merge_settings(cfg, "emr_serverless", {"platform": "local"}, "glue").platform == "glue"


@pytest.mark.parametrize(
    "config, platform, message",
    [
        ("{not json", None, "not valid JSON"),
        ("[1]", None, "must be a JSON object"),
        ('{"scripts_url": "s3://x"}', None, "unknown keys \\['scripts_url'\\]"),
        (None, "databricks", "unknown Spark platform 'databricks'"),
        ('{"glue_connections": {"a": 1}}', None, "glue_connections must be a list of Glue connection names"),
        ('{"glue_connections": [1]}', None, "glue_connections must be a list"),
        ('{"glue_connection_strategy": "fastest"}', None, "glue_connection_strategy 'fastest' is unknown"),
    ],
)
def test_bad_settings_name_the_problem(config, platform, message):
    with pytest.raises(SettingsError, match=message):
        merge_settings(config, platform, None)


def test_glue_connections_as_a_list_or_a_comma_separated_string():
    assert merge_settings(None, None, None).glue_connections == ()
    listed = merge_settings({"glue_connections": ["net-a", " net-b", "net-a", ""]}, None, None)
    assert listed.glue_connections == ("net-a", "net-b")
    assert merge_settings({"glue_connections": "net-a, net-b"}, None, None).glue_connections == ("net-a", "net-b")


def test_require_names_missing_settings_and_variable():
    s = merge_settings(None, "emr_serverless", None)
    with pytest.raises(SettingsError, match="emr_application_id, emr_execution_role_arn.*spark_platform_config"):
        s.require("emr_application_id", "emr_execution_role_arn")


def test_iceberg_catalog_conf_under_its_name():
    s = merge_settings({"iceberg_catalog_name": "wh", "iceberg_catalog": {"warehouse": "s3://l/w"}}, None, None)
    conf = s.iceberg_spark_conf()
    assert conf["spark.sql.catalog.wh"] == "org.apache.iceberg.spark.SparkCatalog"
    assert conf["spark.sql.catalog.wh.warehouse"] == "s3://l/w"
    assert "IcebergSparkSessionExtensions" in conf["spark.sql.extensions"]
    assert merge_settings({"iceberg_catalog": {}}, None, None).iceberg_spark_conf() == {}
    assert set(DEFAULTS) >= {"platform", "scripts_uri", "iceberg_catalog"}
