"""Run a script from ``spark_jobs/`` on Glue, EMR Serverless or local spark-submit.

``script_operator`` (``SparkScriptOperator``), ``settings`` (which platform, with what
configuration, decided at run time), ``arguments`` (one invocation in each platform's
dialect, and the jobs archive), ``local_runner`` (spark-submit on the worker) and
``platform_report`` (the ``spark_platform_check`` DAG's report). ``arguments`` is a pure
module: no AWS client, no Airflow.
"""
