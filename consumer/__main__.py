"""``python -m consumer`` runs the command line, as the ``credentials-consumer`` script does."""

from consumer.cli import main

raise SystemExit(main())
