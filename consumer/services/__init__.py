"""HTTP clients of the Open edX services the worker reads from and writes to.

``http`` (the one request path and error classification), ``oauth`` (the JWT cache),
``credentials``, ``lms``, ``studio``, ``discovery`` + ``program_cache``, ``settings``
(``ServiceSettings``), ``bundle`` (``build_services``) and ``check`` (the CLI's
connectivity check).
"""
