-- The latest daily chart of one playlist, top N, with every credited artist. Names and
-- credits are those of the chart's own snapshot (every table row names its snapshot), so
-- the dimension tables are read for that day only.
-- Parameters: playlist_id, playlist_id, top_n.
WITH latest_day AS (
    -- daily_chart has a day exactly when chart_entries has one; the table is cheaper to scan.
    SELECT max(dt) AS dt FROM chart_entries WHERE playlist_id = ?
),
chart AS (
    SELECT d.playlist_id, d.dt, d.extracted_at, d.chart_rank, d.track_id
    FROM daily_chart AS d
    JOIN latest_day AS l ON d.dt = l.dt
    WHERE d.playlist_id = ? AND d.chart_rank <= ?
)
SELECT c.chart_rank,
       t.name AS track,
       array_join(array_agg(a.name ORDER BY ta.artist_position), ', ') AS artists,
       c.dt
FROM chart AS c
JOIN tracks AS t
  ON t.dt = c.dt AND t.playlist_id = c.playlist_id AND t.extracted_at = c.extracted_at
 AND t.track_id = c.track_id
JOIN track_artists AS ta
  ON ta.dt = c.dt AND ta.playlist_id = c.playlist_id AND ta.extracted_at = c.extracted_at
 AND ta.track_id = c.track_id
JOIN artists AS a
  ON a.dt = c.dt AND a.playlist_id = c.playlist_id AND a.extracted_at = c.extracted_at
 AND a.artist_id = ta.artist_id
GROUP BY c.chart_rank, t.name, c.dt
ORDER BY c.chart_rank
