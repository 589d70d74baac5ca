"""What the local stack is seeded with: ``aws_world`` (VPC, subnets, Glue connections and jobs,
buckets, EMR Serverless, SNS, SES, MWAA), ``tickit`` (the Redshift stand-in's tables),
``cost_history`` (past job runs), ``iceberg_tables`` (tables that need maintenance) and
``samples`` (input files).
"""
