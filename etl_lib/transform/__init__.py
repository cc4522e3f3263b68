"""Transform: raw envelopes into the lake's tables.

``schemas`` (the tables' Arrow schemas) and ``decode`` (an envelope's bytes into rows, pure)
do no I/O. ``iceberg`` writes and reads the rows as Apache Iceberg tables (SQLite catalog
inside a local lake, Glue on AWS); ``compaction`` rewrites small files and expires old
snapshots; ``previous_layout`` keeps commands off a lake still in the previous release's
layout until ``spotify-etl migrate`` has rebuilt it.
"""
