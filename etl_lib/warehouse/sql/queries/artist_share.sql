-- Each artist's share of the window's chart entries (one track on one day), counting every
-- credited artist: a three-artist track gives each artist the entry, so shares can add up to
-- more than 1. Credits and names are those of each entry's own snapshot, so the dimension
-- tables are read for the window's days only. Most entries first, then artist_id.
-- Parameters: playlist_id, first_day, last_day ('YYYY-MM-DD').
WITH chart_window AS (
    -- The window's first and last dates are bound as strings: a plain predicate on dt, the
    -- partition column, which Athena prunes on and both engines compare the same way.
    SELECT playlist_id, dt, extracted_at, chart_date, track_id, chart_rank
    FROM daily_chart
    WHERE playlist_id = ? AND dt BETWEEN ? AND ?
),
all_entries AS (
    SELECT count(*) AS chart_entries FROM chart_window
),
credited_entries AS (
    -- One row per entry and credited artist (a repeated credit counts once).
    SELECT DISTINCT w.playlist_id, w.dt, w.extracted_at, w.chart_date, w.track_id, ta.artist_id
    FROM chart_window AS w
    JOIN track_artists AS ta
      ON ta.dt = w.dt AND ta.playlist_id = w.playlist_id AND ta.extracted_at = w.extracted_at
     AND ta.track_id = w.track_id
),
artist_entries AS (
    -- The entries' last snapshot names the artist.
    SELECT artist_id,
           count(*) AS entries,
           max(extracted_at) AS last_seen_at,
           max_by(dt, extracted_at) AS last_dt,
           max_by(playlist_id, extracted_at) AS last_playlist_id
    FROM credited_entries
    GROUP BY artist_id
)
SELECT a.artist_id,
       ar.name,
       a.entries,
       CAST(a.entries AS DOUBLE) / CAST(t.chart_entries AS DOUBLE) AS share
FROM artist_entries AS a
CROSS JOIN all_entries AS t
LEFT JOIN artists AS ar
  ON ar.dt = a.last_dt AND ar.playlist_id = a.last_playlist_id
 AND ar.extracted_at = a.last_seen_at AND ar.artist_id = a.artist_id
ORDER BY a.entries DESC, a.artist_id
