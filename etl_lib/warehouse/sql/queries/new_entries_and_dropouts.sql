-- Tracks on the window's last chart day but not its first ('new_entry', ranked as on the last
-- day), and on the first but not the last ('dropout', ranked as on the first day).
-- A track that came and went inside the window is neither. New entries first, each by rank.
-- Parameters: playlist_id, first_day, last_day ('YYYY-MM-DD').
WITH chart_window AS (
    -- The window's first and last dates are bound as strings: a plain predicate on dt, the
    -- partition column, which Athena prunes on and both engines compare the same way.
    SELECT chart_date, track_id, chart_rank
    FROM daily_chart
    WHERE playlist_id = ? AND dt BETWEEN ? AND ?
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
