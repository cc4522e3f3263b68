-- The latest name and album of every track seen in the window.
-- Parameters: first_day, last_day ('YYYY-MM-DD').
SELECT track_id, max_by(name, extracted_at) AS name, max_by(album_id, extracted_at) AS album_id
FROM tracks
WHERE dt BETWEEN ? AND ?
GROUP BY track_id
