-- One row per album: the attributes seen in its most recent snapshot.
SELECT album_id, name, album_type, release_date, release_date_precision, total_tracks,
       spotify_url, extracted_at AS last_seen_at
FROM (
    SELECT a.*, row_number() OVER (PARTITION BY album_id ORDER BY extracted_at DESC) AS recency
    FROM albums AS a
) AS ranked
WHERE recency = 1
