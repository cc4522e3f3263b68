-- Per playlist: tracks on the window's last chart day but not its first ('new_entry', ranked
-- as on the last day), and on the first but not the last ('dropout', ranked as on the first
-- day). A track that came and went inside the window is neither. New entries first, each by
-- rank.
-- Parameters: playlists, first_day, last_day ('YYYY-MM-DD'; playlists: one id, or several
-- joined with ',').
WITH chart_window AS (
    -- The window's first and last dates are bound as strings: a plain predicate on dt, the
    -- partition column, which Athena prunes on and both engines compare the same way.
    SELECT playlist_id, chart_date, track_id, chart_rank
    FROM daily_chart
    WHERE contains(split(?, ','), playlist_id) AND dt BETWEEN ? AND ?
),
edge_days AS (
    -- Each playlist's own first and last chart day: a day one chart missed moves its edges only.
    SELECT playlist_id, min(chart_date) AS first_day, max(chart_date) AS last_day
    FROM chart_window
    GROUP BY playlist_id
),
first_day_chart AS (
    SELECT w.playlist_id, w.track_id, w.chart_rank
    FROM chart_window AS w
    JOIN edge_days AS e ON w.playlist_id = e.playlist_id AND w.chart_date = e.first_day
),
last_day_chart AS (
    SELECT w.playlist_id, w.track_id, w.chart_rank
    FROM chart_window AS w
    JOIN edge_days AS e ON w.playlist_id = e.playlist_id AND w.chart_date = e.last_day
)
SELECT playlist_id, status, track_id, chart_rank
FROM (
    SELECT l.playlist_id, 'new_entry' AS status, l.track_id, l.chart_rank
    FROM last_day_chart AS l
    LEFT JOIN first_day_chart AS f ON f.playlist_id = l.playlist_id AND f.track_id = l.track_id
    WHERE f.track_id IS NULL
    UNION ALL
    SELECT f.playlist_id, 'dropout' AS status, f.track_id, f.chart_rank
    FROM first_day_chart AS f
    LEFT JOIN last_day_chart AS l ON l.playlist_id = f.playlist_id AND l.track_id = f.track_id
    WHERE l.track_id IS NULL
) AS changes
ORDER BY playlist_id, status DESC, chart_rank
