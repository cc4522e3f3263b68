-- Per track on the window's last chart day: days from its album's release to that day.
-- Year- and month-precision release dates are stored as their first day (the albums table),
-- so they count from it. Same as etl_lib.analysis.release_age.
-- Parameters: playlist_id, as_of ('YYYY-MM-DD'), days.
WITH params AS (
    SELECT CAST(? AS VARCHAR) AS playlist_id, CAST(? AS DATE) AS as_of, CAST(? AS INTEGER) AS days
),
chart_window AS (
    -- The `days` dates ending at as_of. The filter is on dt, the partition key, not on
    -- chart_date (a CAST of it), to give Athena a predicate on the partition column. The inner
    -- CAST AS DATE is needed on DuckDB, where date + interval is a timestamp ('... 00:00:00').
    SELECT d.chart_date, d.track_id, d.chart_rank
    FROM daily_chart AS d
    JOIN params AS p
      ON d.playlist_id = p.playlist_id
     AND d.dt BETWEEN CAST(CAST(date_add('day', 1 - p.days, p.as_of) AS DATE) AS VARCHAR)
                  AND CAST(p.as_of AS VARCHAR)
),
last_day_chart AS (
    SELECT w.chart_date, w.chart_rank, w.track_id
    FROM chart_window AS w
    WHERE w.chart_date = (SELECT max(chart_date) FROM chart_window)
)
SELECT l.chart_date,
       l.chart_rank,
       l.track_id,
       t.album_id,
       al.release_date,
       al.release_date_precision,
       date_diff('day', al.release_date, l.chart_date) AS days_since_release
FROM last_day_chart AS l
LEFT JOIN latest_tracks AS t ON t.track_id = l.track_id
LEFT JOIN latest_albums AS al ON al.album_id = t.album_id
ORDER BY l.chart_rank
