-- Rank change from the window's first chart day to its last, for tracks on both days:
-- rank_change = first_rank - last_rank (positive = climbed). The top_n biggest climbers and
-- top_n biggest fallers, ties by better last rank. Same as etl_lib.analysis.climbers_and_fallers.
-- Parameters: playlist_id, as_of ('YYYY-MM-DD'), days, top_n.
WITH params AS (
    SELECT CAST(? AS VARCHAR) AS playlist_id, CAST(? AS DATE) AS as_of, CAST(? AS INTEGER) AS days,
           CAST(? AS INTEGER) AS top_n
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
JOIN params AS p ON r.place <= p.top_n
ORDER BY r.rank_change DESC, r.last_rank, r.track_id
