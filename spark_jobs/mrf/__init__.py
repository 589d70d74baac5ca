"""Price-transparency (machine-readable file) conversion: ``json_split`` (the streaming
splitter), ``grain`` (the output rows, pure, item by item), ``arrow_grain`` (the same rows
vectorised over Arrow), ``native`` (the C fast path, ``csrc/mrf_native.c``, through ctypes)
and ``convert`` (the pipeline of reader, splitter and writers).
"""
