-- The credited artists of every track seen in the window, in credited order, as of the
-- track's latest snapshot there (two playlists captured at the same second credit alike).
-- Parameters: first_day, last_day, first_day, last_day ('YYYY-MM-DD').
WITH latest AS (
    SELECT track_id, max(extracted_at) AS extracted_at
    FROM track_artists
    WHERE dt BETWEEN ? AND ?
    GROUP BY track_id
)
SELECT DISTINCT ta.track_id, ta.artist_id, ta.artist_position
FROM track_artists AS ta
JOIN latest AS l ON ta.track_id = l.track_id AND ta.extracted_at = l.extracted_at
WHERE ta.dt BETWEEN ? AND ?
