-- Tracks on the window's last chart day but not its first ('new_entry', ranked as on the last
-- day), and on the first but not the last ('dropout', ranked as on the first day).
-- Same as etl_lib.analysis.new_entries_and_dropouts.
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
edge_days AS (
    SELECT min(chart_date) AS first_day, max(chart_date) AS last_day FROM chart_window
),
first_day_chart AS (
    SELECT w.track_id, w.chart_rank
    FROM chart_window AS w JOIN edge_days AS e ON w.chart_date = e.first_day
),
last_day_chart AS (
    SELECT w.track_id, w.chart_rank
    FROM chart_window AS w JOIN edge_days AS e ON w.chart_date = e.last_day
)
SELECT status, track_id, chart_rank
FROM (
    SELECT 'new_entry' AS status, l.track_id, l.chart_rank
    FROM last_day_chart AS l
    LEFT JOIN first_day_chart AS f ON f.track_id = l.track_id
    WHERE f.track_id IS NULL
    UNION ALL
    SELECT 'dropout' AS status, f.track_id, f.chart_rank
    FROM first_day_chart AS f
    LEFT JOIN last_day_chart AS l ON l.track_id = f.track_id
    WHERE l.track_id IS NULL
) AS changes
ORDER BY status DESC, chart_rank
