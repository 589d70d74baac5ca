"""The Airflow side of Iceberg maintenance: ``settings`` (pure) resolves the Variable and the
trigger form into the job's arguments and formats its reports. The plan and the Spark work
are in ``spark_jobs/iceberg/``.
"""
