-- Per playlist and track on the playlist's last chart day in the window: days from its album's
-- release to that day. Year- and month-precision release dates are stored as their first day
-- (the albums table), so they count from it. Album and release date are those of the chart's
-- own snapshot, so the dimension tables are read for that day only. A track without an album
-- or a release date has no age. Per playlist, by rank.
-- Parameters: playlists, first_day, last_day ('YYYY-MM-DD'; playlists: one id, or several
-- joined with ',').
WITH chart_window AS (
    -- The window's first and last dates are bound as strings: a plain predicate on dt, the
    -- partition column, which Athena prunes on and both engines compare the same way.
    SELECT playlist_id, dt, extracted_at, chart_date, track_id, chart_rank
    FROM daily_chart
    WHERE contains(split(?, ','), playlist_id) AND dt BETWEEN ? AND ?
),
last_days AS (
    SELECT playlist_id, max(chart_date) AS last_day FROM chart_window GROUP BY playlist_id
),
last_day_chart AS (
    SELECT w.playlist_id, w.dt, w.extracted_at, w.chart_date, w.chart_rank, w.track_id
    FROM chart_window AS w
    JOIN last_days AS d ON d.playlist_id = w.playlist_id AND d.last_day = w.chart_date
)
SELECT l.playlist_id,
       l.chart_date,
       l.chart_rank,
       l.track_id,
       t.album_id,
       al.release_date,
       al.release_date_precision,
       date_diff('day', al.release_date, l.chart_date) AS days_since_release
FROM last_day_chart AS l
LEFT JOIN tracks AS t
  ON t.dt = l.dt AND t.playlist_id = l.playlist_id AND t.extracted_at = l.extracted_at
 AND t.track_id = l.track_id
LEFT JOIN albums AS al
  ON al.dt = l.dt AND al.playlist_id = l.playlist_id AND al.extracted_at = l.extracted_at
 AND al.album_id = t.album_id
ORDER BY l.playlist_id, l.chart_rank
