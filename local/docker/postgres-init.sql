-- Databases beside Airflow's metadata DB, as the native stack creates them.
CREATE DATABASE iceberg_catalog;
CREATE DATABASE warehouse;
\c warehouse
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
