"""The Airflow side of the Redshift quarterly-sales pipeline (``quarterly_sales``): settings,
the run's query label, the connector's tempdir, and the proof that the query was pushed down.
The Spark job is ``spark_jobs/redshift_pushdown.py``.
"""
