"""What the local stack runs: Glue and EMR Serverless job runs executed with local Spark.

moto records a StartJobRun and reports a run that does nothing. These engines give the local
stack's runs a body: each run's script is fetched from (local) S3 and executed with the
pyspark and jars installed beside the stack, under the platform's rules (states, timeouts,
cancellation, logs, resource figures), so the production code paths run real jobs.

* ``spark_process``: one run as a spark-submit process (files fetched from S3, stdout and
  stderr kept apart, a deadline, a stop), and the stack's capacity for concurrent runs;
* ``emr_serverless``: EMR Serverless StartJobRun / CancelJobRun / GetJobRun with execution;
* ``glue``: Glue CreateJob / UpdateJob checks, StartJobRun / BatchStopJobRun / GetJobRun with
  execution and CloudWatch logs.

Loaded by the moto server (``local/aws/server.py``) only; in-process moto in unit tests keeps
moto's own behaviour. Of the product, the engines import only the spark-submit builder of
the ``local`` platform (``operators.spark.local_runner``), so a run here starts Spark exactly
as ``platform=local`` does.
"""
