-- The chart of the window's last chart day, as the chart view shows it: rank, movement, name,
-- artists, peak, days on chart. Peak and days on chart count the playlist's whole history up
-- to that day, not the window: etl_lib.reporting.reports.load_inputs plans its tables from the
-- lake's first day to the window's last.
-- Parameters: playlist_id, first_day, last_day, playlist_id ('YYYY-MM-DD').
WITH last_chart_day AS (
    -- daily_chart has a day exactly when chart_entries has one; the table is cheaper to scan.
    SELECT max(dt) AS dt FROM chart_entries WHERE playlist_id = ? AND dt BETWEEN ? AND ?
)
SELECT c.playlist_id,
       c.dt,
       c.chart_date,
       c.chart_rank,
       c.movement,
       c.previous_rank,
       c.track_name,
       c.artists,
       c.peak_rank,
       c.days_on_chart,
       c.first_seen,
       c.track_id,
       c.track_url
FROM chart AS c
JOIN last_chart_day AS l ON c.dt = l.dt
WHERE c.playlist_id = ?
ORDER BY c.chart_rank
