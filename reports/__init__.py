"""HTML reports for compliance officers and product owners (issue 6).

Plain functions that read the serving database (audit log, consent registry, feedback, online
profiles) and MLflow, and return one self-contained HTML page each: styles and the plotly.js
bundle are inlined, so a page opens with no network. ``nba report ...`` writes them to files;
the service serves the same pages (`serving.pages`).

- :mod:`reports.compliance`: the proofs of COMPLIANCE.md as queries with their counts,
  fairness of selection rates, the champions' model cards;
- :mod:`reports.decision`: one decision as compliance reads it;
- :mod:`reports.experiments`: offline runs side by side, online variants with uplift.
"""
