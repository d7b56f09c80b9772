"""HTTP clients of the Open edX services the worker reads from and writes to.

``http`` (the one request path, over a ``requests`` transport — the seam tests replace),
``classify`` (how a failure becomes the worker's error: pure), ``calls`` (a call's values
and the guard and token hooks), ``deadline`` (the total bound of a call), ``answers``
(reading answers of the documented shape), ``redaction``, ``oauth`` (the JWT cache),
``credentials``, ``lms``, ``studio``, ``discovery`` + ``program_cache``, ``settings``
(``ServiceSettings``), ``bundle`` (``build_services``) and ``check`` (the CLI's
connectivity check).
"""
