-- Rank change from the window's first chart day to its last, for tracks on both days:
-- rank_change = first_rank - last_rank (positive = climbed). The top_n biggest climbers and
-- the top_n biggest fallers, ties by better last rank; unchanged tracks are left out. Biggest
-- climber first, biggest faller last.
-- Parameters: playlist_id, first_day, last_day ('YYYY-MM-DD'), top_n.
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
moves AS (
    SELECT f.track_id,
           f.chart_rank AS first_rank,
           l.chart_rank AS last_rank,
           f.chart_rank - l.chart_rank AS rank_change
    FROM edge_days AS e
    JOIN chart_window AS f ON f.chart_date = e.first_day
    JOIN chart_window AS l ON l.chart_date = e.last_day AND l.track_id = f.track_id
),
ranked AS (
    SELECT track_id, first_rank, last_rank, rank_change,
           row_number() OVER (
               PARTITION BY sign(rank_change) ORDER BY abs(rank_change) DESC, last_rank, track_id
           ) AS place
    FROM moves
    WHERE rank_change <> 0
)
SELECT r.track_id, r.first_rank, r.last_rank, r.rank_change
FROM ranked AS r
WHERE r.place <= ?
ORDER BY r.rank_change DESC, r.last_rank, r.track_id
