"""Development tooling: the local stack scripts, Prometheus fetch and the dashboard generator."""
