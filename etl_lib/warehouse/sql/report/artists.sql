-- The latest name of every artist seen in the window.
-- Parameters: first_day, last_day ('YYYY-MM-DD').
SELECT artist_id, max_by(name, extracted_at) AS name
FROM artists
WHERE dt BETWEEN ? AND ?
GROUP BY artist_id
