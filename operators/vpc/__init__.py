"""Health and ranking of Glue VPC connections, shared by every task that starts a Glue job in a VPC.

``health`` reads every candidate's subnet, zone, security groups, routes and the job's recent
runs in a fixed number of AWS calls; ``ranking`` (pure: no AWS client, no Airflow) judges and
orders them; ``choice`` joins the two. The healthiest-subnet operator
(``operators.subnet``) and ``SparkScriptOperator`` with Glue connections
(``operators.spark``) both decide through ``choice.choose_connections``: one decision path.
"""
