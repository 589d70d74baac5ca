"""What every Spark job shares: ``cli`` (arguments, tolerant of what Glue adds), ``session``
(the SparkSession, the same way on every platform) and ``storage`` (local disk or S3, and
atomic publishing). It imports no other package of ``spark_jobs``.
"""
