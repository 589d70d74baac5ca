"""Packaging and deployment to Amazon MWAA."""
