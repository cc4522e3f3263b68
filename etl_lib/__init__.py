"""spotify-charts-lake: Spotify playlist charts -> raw zone -> Iceberg tables -> SQL -> reports."""

__version__ = "0.1.0"
