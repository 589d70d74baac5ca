"""Operators and the pure decision logic behind them, one package per pipeline.

On MWAA this package sits inside the dags/ folder (the deploy step places it there, as
AWS recommends for custom operators), so DAGs import it as ``operators``; locally and in
docker-compose the same layout is reproduced. Keep imports here light: DAG files import
this package at parse time.

Packages:

* ``spark``: ``SparkScriptOperator`` (any ``spark_jobs/`` script on Glue, EMR Serverless or
  local spark-submit), its settings, argument translation and the local runner; every
  Spark pipeline's DAG uses it;
* ``subnet``: the Glue job on the healthiest subnet (operator, lease);
* ``cost``: cost collection, ledger, alerts and the weekly report;
* ``iceberg``: settings of Iceberg maintenance;
* ``redshift``: the Airflow side of the Redshift quarterly-sales pipeline;
* ``price_transparency``: discovery, validation and registration around JSON to Parquet.

Shared by several: ``links`` (console links, defined in the plugin), ``s3_lifecycle`` and the
``vpc`` package (Glue VPC connection health and ranking: the subnet operator and Spark tasks
with Glue connections decide through it).

Import rules (``tests/unit/test_import_rules.py``): never ``local``, ``deploy``, ``bench``,
``tests`` or pyspark; of ``spark_jobs`` only its pure decision modules (cost model, Iceberg
policy); a pipeline's package imports its own modules and the shared ones above, never
another pipeline's package.
"""
