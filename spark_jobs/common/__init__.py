"""Helpers shared by the Spark jobs (shipped as part of spark_jobs.zip)."""
