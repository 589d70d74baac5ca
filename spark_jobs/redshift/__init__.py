"""The quarterly-sales report: ``sales_report`` (the report's SQL, once, for Spark and the
warehouse) and ``warehouse`` (reading and writing Redshift, or PostgreSQL locally).
"""
