-- The latest daily chart of one playlist, top N, with every credited artist.
-- Parameters: playlist_id, playlist_id, top_n.
WITH latest_day AS (
    -- daily_chart has a day exactly when chart_entries has one; the table is cheaper to scan.
    SELECT max(dt) AS dt FROM chart_entries WHERE playlist_id = ?
)
SELECT d.chart_rank,
       t.name AS track,
       array_join(array_agg(a.name ORDER BY ta.artist_position), ', ') AS artists,
       d.dt
FROM daily_chart AS d
JOIN latest_day AS l ON d.dt = l.dt
JOIN latest_tracks AS t ON t.track_id = d.track_id
JOIN latest_track_artists AS ta ON ta.track_id = d.track_id
JOIN latest_artists AS a ON a.artist_id = ta.artist_id
WHERE d.playlist_id = ? AND d.chart_rank <= ?
GROUP BY d.chart_rank, t.name, d.dt
ORDER BY d.chart_rank
