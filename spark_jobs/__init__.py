"""PySpark entry points, one per pipeline, at the top of this folder; the code they run in a
package per pipeline. No Airflow imports: each script runs unchanged on Glue, EMR Serverless
and local spark-submit.

* ``common``: what every job shares (argument parsing, the session, storage and publishing);
* ``mrf``: the price-transparency converter (splitter, row grain, native fast path);
* ``iceberg``: maintenance policy, plan, procedures and tag checks;
* ``cost``: the cost model and its Spark twin;
* ``redshift``: the quarterly-sales report and the warehouse access.

Everything but the entry points ships next to the scripts as ``spark_jobs.zip``
(``--extra-py-files`` / ``--py-files``).

Import rules (``tests/unit/test_import_rules.py``): never Airflow, ``operators``, ``local``,
``deploy``, ``bench`` or ``tests``; ``common`` imports no other package here, and no
pipeline's package imports another's.
"""
