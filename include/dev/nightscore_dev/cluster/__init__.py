"""nightscore in its production shape on one Linux machine: Celery workers on hosts of
their own (network namespaces), the services on the network, a check that replays nights
through it (`python -m nightscore_dev.cluster`, `make test-distributed`)."""
