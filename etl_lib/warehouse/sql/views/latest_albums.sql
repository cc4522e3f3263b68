-- One row per album: the attributes seen in its most recent snapshot.
-- max_by is one pass of an aggregate; a row_number() window would sort every snapshot's row.
SELECT album_id,
       max_by(name, extracted_at) AS name,
       max_by(album_type, extracted_at) AS album_type,
       max_by(release_date, extracted_at) AS release_date,
       max_by(release_date_precision, extracted_at) AS release_date_precision,
       max_by(total_tracks, extracted_at) AS total_tracks,
       max_by(spotify_url, extracted_at) AS spotify_url,
       max(extracted_at) AS last_seen_at
FROM albums
GROUP BY album_id
