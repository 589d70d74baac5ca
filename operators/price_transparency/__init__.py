"""What the price-transparency DAG does around the conversion (``tasks``): discover source
files, validate each output against its manifest, register the Glue table. The converter is
``spark_jobs/json_to_parquet.py``.
"""
