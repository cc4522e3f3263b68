"""Reporting: what a reader sees, built from the warehouse's query results.

``analysis`` binds the shipped queries' parameters and shapes their results; ``charts`` draws
matplotlib Figures and exports them deterministically; ``reports`` runs the report notebooks
(``notebooks/``, package data) with papermill and publishes them in the lake with an index;
``report_html`` formats tables for those pages; ``status`` says what the lake holds and how
the last checks and reports went.
"""
