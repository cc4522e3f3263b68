-- The chart of each playlist's last chart day in the window, as the chart view shows it: rank,
-- movement, name, artists, peak, days on chart. Peak and days on chart count the playlist's
-- whole history up to that day, not the window: etl_lib.reporting.reports.load_inputs plans
-- its tables from the lake's first day to the window's last. Per playlist, by rank.
-- Parameters: playlists, first_day, last_day, playlists ('YYYY-MM-DD'; playlists: one id, or
-- several joined with ',').
WITH last_chart_day AS (
    -- daily_chart has a day exactly when chart_entries has one; the table is cheaper to scan.
    SELECT playlist_id, max(dt) AS dt
    FROM chart_entries
    WHERE contains(split(?, ','), playlist_id) AND dt BETWEEN ? AND ?
    GROUP BY playlist_id
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
JOIN last_chart_day AS l ON c.playlist_id = l.playlist_id AND c.dt = l.dt
-- The view's window functions are partitioned by playlist_id: a filter on it can go below them,
-- so the engine need not rank the other playlists' history.
WHERE contains(split(?, ','), c.playlist_id)
ORDER BY c.playlist_id, c.chart_rank
