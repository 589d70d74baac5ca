"""A Glue job on the healthiest of its candidate VPC connections.

``glue_operator`` (``GlueJobOnHealthiestSubnetOperator``) decides through the shared
``operators.vpc`` (health reads in a fixed number of calls, a pure ranking) and starts the
job under a per-job S3 lease (``lease``).
"""
