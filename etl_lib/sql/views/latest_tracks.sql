-- One row per track: the attributes seen in its most recent snapshot.
SELECT track_id, name, duration_ms, explicit, album_id, track_number, disc_number, isrc,
       spotify_url, extracted_at AS last_seen_at
FROM (
    SELECT t.*, row_number() OVER (PARTITION BY track_id ORDER BY extracted_at DESC) AS recency
    FROM tracks AS t
) AS ranked
WHERE recency = 1
