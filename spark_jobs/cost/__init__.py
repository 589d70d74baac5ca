"""The cost model: ``model`` (what a Glue or EMR Serverless run costs; pure Python) and
``spark_columns`` (the same rules as Spark column expressions over ledger rows).
"""
