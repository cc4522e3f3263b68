-- The name of every track on each playlist's chart in the window, and its artists (every
-- credited artist with a name, in credited order, joined with ', '), as the track's last
-- snapshot on that chart in the window names them. The report's tables and charts label the
-- analyses' tracks with it (etl_lib.reporting.analysis.with_labels).
-- Parameters: playlists, first_day, last_day ('YYYY-MM-DD'; playlists: one id, or several
-- joined with ',').
WITH charted AS (
    -- The window's first and last dates are bound as strings: a plain predicate on dt, the
    -- partition column, which Athena prunes on and both engines compare the same way.
    SELECT playlist_id,
           track_id,
           max(extracted_at) AS extracted_at,
           max_by(dt, extracted_at) AS dt
    FROM daily_chart
    WHERE contains(split(?, ','), playlist_id) AND dt BETWEEN ? AND ?
    GROUP BY playlist_id, track_id
),
credits AS (
    -- The same snapshot (playlist, day, extraction) credits and names the artists.
    SELECT playlist_id,
           track_id,
           array_join(array_agg(a.name ORDER BY ta.artist_position), ', ') AS artists
    FROM charted
    JOIN track_artists AS ta USING (playlist_id, dt, extracted_at, track_id)
    JOIN artists AS a USING (playlist_id, dt, extracted_at, artist_id)
    WHERE a.name IS NOT NULL
    GROUP BY playlist_id, track_id
)
SELECT playlist_id, track_id, t.name AS track_name, credits.artists
FROM charted
LEFT JOIN tracks AS t USING (playlist_id, dt, extracted_at, track_id)
LEFT JOIN credits USING (playlist_id, track_id)
ORDER BY playlist_id, track_id
