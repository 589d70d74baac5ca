"""Iceberg maintenance: ``policy`` (what maintenance may do, how files are tagged; pure),
``plan`` (which actions a table needs, from its measured state; pure), ``table`` (measure a
table and run Iceberg's procedures in Spark) and ``tags`` (read the S3 tags back).
"""
