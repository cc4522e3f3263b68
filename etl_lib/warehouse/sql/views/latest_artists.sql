-- One row per artist: the attributes seen in its most recent snapshot.
-- max_by is one pass of an aggregate; a row_number() window would sort every snapshot's row.
SELECT artist_id,
       max_by(name, extracted_at) AS name,
       max_by(spotify_url, extracted_at) AS spotify_url,
       max(extracted_at) AS last_seen_at
FROM artists
GROUP BY artist_id
