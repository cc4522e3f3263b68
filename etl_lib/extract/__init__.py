"""Extract: the sources a chart comes from, and the raw-zone envelope their answers land in.

Owns the Spotify Web API (``spotify``: one playlist and its item pages under one call policy;
``auth`` and ``credentials``: user tokens, client credentials, where secrets are kept), the
public playlist archive (``archive``), the registry that makes them interchangeable sources
(``sources``), and ``envelope``: the JSON around an unchanged API response that the raw zone
keeps forever. Writing to the lake is the pipeline's job; nothing here knows the tables.
"""
