"""``make chaos``: a fault-injection soak on a real broker and registry, and its audit.

``soak`` runs it (a private ``dev/stack``, the fake Open edX, the worker as processes, the
faults of ``faults``), ``workload`` decides what is published, ``model`` is what Credentials
should hold by the worker's pure rules, and ``audit`` compares and reports.
"""
