#!/usr/bin/env bash
# Startup script, as MWAA runs one before Airflow starts: load the connection and
# Variables that the seed service wrote for this stack.
set -euo pipefail
if [ -f /usr/local/airflow/stack/airflow.env ]; then
  # shellcheck disable=SC1091
  source /usr/local/airflow/stack/airflow.env
fi
