"""The lake: a local folder or ``s3://bucket/prefix`` holding the raw zone and the tables.

``layout`` names where things live (raw snapshots, heartbeats, quarantine) and does no I/O;
``storage`` is the only code that reads, writes, lists and deletes objects on a lake root,
with one-line errors for storage that is missing, unreachable or refusing.
"""
