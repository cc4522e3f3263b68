-- Every credited artist of each track, in credited order, as of the track's latest snapshot.
-- DISTINCT: two playlists captured in the same second both hold the track's credits.
WITH latest AS (
    SELECT track_id, max(extracted_at) AS extracted_at
    FROM track_artists
    GROUP BY track_id
)
SELECT DISTINCT ta.track_id, ta.artist_id, ta.artist_position
FROM track_artists AS ta
JOIN latest AS l ON ta.track_id = l.track_id AND ta.extracted_at = l.extracted_at
