"""Operators and the pure decision logic behind them.

On MWAA this package sits inside the dags/ folder (the deploy step places it there, as
AWS recommends for custom operators), so DAGs import it as ``operators``; locally and in
docker-compose the same layout is reproduced. Keep imports here light: DAG files import
this package at parse time.
"""
