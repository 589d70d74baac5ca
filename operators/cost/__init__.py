"""Cost alerts and the weekly cost report over Glue and EMR Serverless runs.

``collect`` (runs since the watermark, priced and tagged) appends to the ``ledger``; the
Spark job ``spark_jobs/cost_aggregation.py`` aggregates it; ``alerts`` publishes each
violation once and ``report`` (with ``png_chart``) renders the weekly report; ``settings``
(pure) checks the Variable and the trigger form; ``tasks`` holds the DAGs' task bodies, the
only module here that builds the provider's hooks.
"""
