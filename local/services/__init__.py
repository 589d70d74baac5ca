"""The local stack's own services: ``stack`` (start, seed and stop everything; the Airflow
environment that uses it), ``postgres`` (Debian's server, a throw-away cluster),
``spark_session`` (an in-process Spark session with the fetched jars), ``spark_cds`` (the JVM
class archive local Spark starts from) and ``platform_runs`` (the Glue and EMR Serverless runs
the stack holds, and the cost of new ones).
"""
