"""spotify-charts-lake: Spotify playlist charts -> raw zone -> Parquet tables -> SQL -> reports."""

__version__ = "0.1.0"
