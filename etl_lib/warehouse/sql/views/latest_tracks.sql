-- One row per track: the attributes seen in its most recent snapshot.
-- max_by is one pass of an aggregate; a row_number() window would sort every snapshot's row.
SELECT track_id,
       max_by(name, extracted_at) AS name,
       max_by(duration_ms, extracted_at) AS duration_ms,
       max_by(explicit, extracted_at) AS explicit,
       max_by(album_id, extracted_at) AS album_id,
       max_by(track_number, extracted_at) AS track_number,
       max_by(disc_number, extracted_at) AS disc_number,
       max_by(isrc, extracted_at) AS isrc,
       max_by(spotify_url, extracted_at) AS spotify_url,
       max(extracted_at) AS last_seen_at
FROM tracks
GROUP BY track_id
