"""The local stack: AWS, PostgreSQL and Spark on 127.0.0.1, with no AWS account.

* ``aws``: the AWS stand-in, moto in server mode and its narrow extensions (each names the
  AWS behaviour it follows);
* ``engines``: the job runs the stack executes with local Spark, under each platform's rules
  (Glue and EMR Serverless);
* ``services``: the stack's own services (PostgreSQL, local Spark, the class archive) and
  ``services.stack``, which starts, seeds and stops them;
* ``seeds``: what the stack puts in them (the AWS world, TICKIT tables, run history,
  Iceberg tables, sample files);
* ``launchers``: the entry points (``make demo``, ``make ui``, docker-compose's seeding);
* ``paths``: where everything lives (under ``.state/``).

Import rules (``tests/unit/test_import_rules.py``): ``aws`` imports nothing of the product
(no Airflow, ``operators`` or ``spark_jobs``) and, of the rest of ``local``, only ``engines``;
``engines`` takes of the product only the local platform's spark-submit builder; nothing
imports ``launchers``. The product (``operators``, ``spark_jobs``, ``deploy``, ``plugins``) never imports
``local``.
"""
