"""nba: prevention and cross-sell next best actions for a mutual health insurer.

This small package holds what ``features``, ``training`` and ``serving`` share:
the vocabularies, settings, errors and the ``nba`` command line.
"""

__version__ = "0.1.0"
