-- Rank change from the window's first chart day to its last, per playlist, for tracks on both
-- days: rank_change = first_rank - last_rank (positive = climbed). The top_n biggest climbers
-- and the top_n biggest fallers of each playlist, ties by better last rank; unchanged tracks
-- are left out. Per playlist, biggest climber first, biggest faller last.
-- Parameters: playlists, first_day, last_day ('YYYY-MM-DD'; playlists: one id, or several
-- joined with ','), top_n.
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
moves AS (
    SELECT e.playlist_id,
           f.track_id,
           f.chart_rank AS first_rank,
           l.chart_rank AS last_rank,
           f.chart_rank - l.chart_rank AS rank_change
    FROM edge_days AS e
    JOIN chart_window AS f ON f.playlist_id = e.playlist_id AND f.chart_date = e.first_day
    JOIN chart_window AS l
      ON l.playlist_id = e.playlist_id AND l.chart_date = e.last_day AND l.track_id = f.track_id
),
ranked AS (
    SELECT playlist_id, track_id, first_rank, last_rank, rank_change,
           row_number() OVER (
               PARTITION BY playlist_id, sign(rank_change)
               ORDER BY abs(rank_change) DESC, last_rank, track_id
           ) AS place
    FROM moves
    WHERE rank_change <> 0
)
SELECT r.playlist_id, r.track_id, r.first_rank, r.last_rank, r.rank_change
FROM ranked AS r
WHERE r.place <= ?
ORDER BY r.playlist_id, r.rank_change DESC, r.last_rank, r.track_id
