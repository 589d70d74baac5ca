"""Entry points that run the local stack for a person or a container: ``demo`` (``make demo``),
``ui`` (``make ui``) and ``compose_seed`` (docker-compose's one-shot seeding). Nothing imports them.
"""
