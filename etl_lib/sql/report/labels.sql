-- The name and every credited artist (in credited order, joined with ', ') of each track on
-- the playlist's charts in the window: labels for the report's charts and tables. Name and
-- credits are the track's latest in the window; an artist is named as in the window's latest
-- snapshot holding it. Every table is read for the window's days only.
-- Parameters: playlist_id, then first_day, last_day five times ('YYYY-MM-DD').
WITH window_tracks AS (
    SELECT DISTINCT track_id
    FROM daily_chart
    WHERE playlist_id = ? AND dt BETWEEN ? AND ?
),
names AS (
    SELECT track_id, max_by(name, extracted_at) AS track_name
    FROM tracks
    WHERE dt BETWEEN ? AND ?
    GROUP BY track_id
),
credited_at AS (
    SELECT track_id, max(extracted_at) AS extracted_at
    FROM track_artists
    WHERE dt BETWEEN ? AND ?
    GROUP BY track_id
),
credits AS (
    -- DISTINCT: two playlists captured in the same second both hold the track's credits.
    SELECT DISTINCT ta.track_id, ta.artist_id, ta.artist_position
    FROM track_artists AS ta
    JOIN credited_at AS l ON ta.track_id = l.track_id AND ta.extracted_at = l.extracted_at
    WHERE ta.dt BETWEEN ? AND ?
),
artist_names AS (
    SELECT artist_id, max_by(name, extracted_at) AS name
    FROM artists
    WHERE dt BETWEEN ? AND ?
    GROUP BY artist_id
),
credited_artists AS (
    SELECT c.track_id,
           array_join(array_agg(a.name ORDER BY c.artist_position), ', ') AS artists
    FROM credits AS c
    JOIN artist_names AS a ON a.artist_id = c.artist_id
    WHERE a.name IS NOT NULL
    GROUP BY c.track_id
)
SELECT w.track_id, n.track_name, ca.artists
FROM window_tracks AS w
LEFT JOIN names AS n ON n.track_id = w.track_id
LEFT JOIN credited_artists AS ca ON ca.track_id = w.track_id
ORDER BY w.track_id
