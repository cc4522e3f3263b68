-- The chart as chart sites show it: per playlist, chart day and rank, the track's name, every
-- credited artist, its movement against the playlist's previous chart day, its peak and its
-- days on chart so far. Peak and days count the playlist's whole history up to each day, so
-- a query of a few days still reads every earlier day (filter on playlist_id to read one).
-- movement: 'NEW' (never on this playlist's chart before), 'RE-ENTRY' (on it before, but not
-- on the previous chart day), 'up N', 'down N' or 'same'. The previous chart day is the
-- playlist's last earlier day with a chart, so a day the extraction missed moves nothing.
-- Names and credits are the latest known (latest_tracks, latest_track_artists).
WITH chart_days AS (
    SELECT playlist_id,
           dt,
           chart_date,
           chart_rank,
           track_id,
           dense_rank() OVER (PARTITION BY playlist_id ORDER BY dt) AS chart_day
    FROM daily_chart
),
track_days AS (
    -- One row per track and chart day: a playlist listing a track twice charts it once.
    SELECT playlist_id, track_id, dt, chart_date, chart_day, min(chart_rank) AS best_rank
    FROM chart_days
    GROUP BY playlist_id, track_id, dt, chart_date, chart_day
),
track_history AS (
    SELECT playlist_id,
           track_id,
           dt,
           chart_day,
           lag(chart_day) OVER (PARTITION BY playlist_id, track_id ORDER BY dt) AS last_chart_day,
           lag(best_rank) OVER (PARTITION BY playlist_id, track_id ORDER BY dt) AS last_rank,
           min(best_rank) OVER (
               PARTITION BY playlist_id, track_id ORDER BY dt
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
           ) AS peak_rank,
           row_number() OVER (PARTITION BY playlist_id, track_id ORDER BY dt) AS days_on_chart,
           min(chart_date) OVER (PARTITION BY playlist_id, track_id) AS first_seen
    FROM track_days
),
credits AS (
    SELECT ta.track_id,
           array_join(array_agg(a.name ORDER BY ta.artist_position), ', ') AS artists
    FROM latest_track_artists AS ta
    JOIN latest_artists AS a ON a.artist_id = ta.artist_id
    WHERE a.name IS NOT NULL
    GROUP BY ta.track_id
)
SELECT c.playlist_id,
       c.dt,
       c.chart_date,
       c.chart_rank,
       CASE
           WHEN h.last_chart_day IS NULL THEN 'NEW'
           WHEN h.last_chart_day < h.chart_day - 1 THEN 'RE-ENTRY'
           WHEN h.last_rank > c.chart_rank
           THEN concat('up ', CAST(h.last_rank - c.chart_rank AS VARCHAR))
           WHEN h.last_rank < c.chart_rank
           THEN concat('down ', CAST(c.chart_rank - h.last_rank AS VARCHAR))
           ELSE 'same'
       END AS movement,
       CASE WHEN h.last_chart_day = h.chart_day - 1 THEN h.last_rank END AS previous_rank,
       t.name AS track_name,
       cr.artists,
       h.peak_rank,
       h.days_on_chart,
       h.first_seen,
       c.track_id,
       -- Built from the id, and only from a Spotify-shaped (base-62) one, so it is never a
       -- link anywhere but open.spotify.com.
       CASE
           WHEN regexp_like(c.track_id, '^[0-9A-Za-z]+$')
           THEN concat('https://open.spotify.com/track/', c.track_id)
       END AS track_url
FROM chart_days AS c
JOIN track_history AS h
  ON h.playlist_id = c.playlist_id AND h.track_id = c.track_id AND h.dt = c.dt
LEFT JOIN latest_tracks AS t ON t.track_id = c.track_id
LEFT JOIN credits AS cr ON cr.track_id = c.track_id
