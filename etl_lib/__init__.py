"""spotify-charts-lake: Spotify playlist charts -> raw zone -> Iceberg tables -> SQL -> reports.

One folder per layer, in the order the data flows: ``extract`` (sources and the raw envelope),
``lake`` (keys and storage I/O), ``transform`` (rows and Iceberg tables), ``warehouse`` (SQL on
DuckDB or Athena), ``reporting`` (charts, report notebooks, status). ``pipeline`` and
``migrate`` drive them; ``cli`` is the command line. ``config`` (every setting the environment
gives), ``errors``, ``aws``, ``bounded_http`` and ``progress`` are shared by all. A layer
imports only the layers below it (``tests/test_layers.py``).
"""

__version__ = "0.1.0"
