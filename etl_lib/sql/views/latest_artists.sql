-- One row per artist: the attributes seen in its most recent snapshot.
SELECT artist_id, name, spotify_url, extracted_at AS last_seen_at
FROM (
    SELECT a.*, row_number() OVER (PARTITION BY artist_id ORDER BY extracted_at DESC) AS recency
    FROM artists AS a
) AS ranked
WHERE recency = 1
