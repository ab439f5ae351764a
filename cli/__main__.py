"""``python -m promptopt.cli`` runs the ``optimize`` command."""

from promptopt.cli.app import main

main()
