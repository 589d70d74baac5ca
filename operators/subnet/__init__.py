"""A Glue job on the healthiest of its candidate VPC connections.

``glue_operator`` (``GlueJobOnHealthiestSubnetOperator``) reads the candidates' health in a
fixed number of calls (``health``), ranks them (``ranking``, pure: no AWS client, no
Airflow) and starts the job under a per-job S3 lease (``lease``).
"""
