"""PySpark entry points. No Airflow imports: each script runs unchanged on Glue,
EMR Serverless and local spark-submit. Shared code lives in ``spark_jobs.common`` and is
shipped next to the scripts as ``spark_jobs.zip`` (``--extra-py-files`` / ``--py-files``).
"""
