"""The local AWS endpoint: moto in server mode (``server``) with narrow extensions for what moto
lacks or accepts where AWS refuses (``extensions``, ``mwaa``, ``history``, ``faults``) and for its
speed (``speed``, ``keepalive``). Nothing here imports the product or the rest of ``local``.
"""
