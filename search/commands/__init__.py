"""Sub-commands of the ``search`` CLI, one module each (see :mod:`search.cli`)."""
