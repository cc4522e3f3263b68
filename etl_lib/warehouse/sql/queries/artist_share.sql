-- Each artist's share of a playlist's chart entries in the window (one track on one day),
-- counting every credited artist: a three-artist track gives each artist the entry, so shares
-- can add up to more than 1. Credits and names are those of each entry's own snapshot, so the
-- dimension tables are read for the window's days only. Per playlist, most entries first,
-- then artist_id.
-- Parameters: playlists, first_day, last_day ('YYYY-MM-DD'; playlists: one id, or several
-- joined with ',').
WITH chart_window AS (
    -- The window's first and last dates are bound as strings: a plain predicate on dt, the
    -- partition column, which Athena prunes on and both engines compare the same way.
    SELECT playlist_id, dt, extracted_at, chart_date, track_id, chart_rank
    FROM daily_chart
    WHERE contains(split(?, ','), playlist_id) AND dt BETWEEN ? AND ?
),
all_entries AS (
    SELECT playlist_id, count(*) AS chart_entries FROM chart_window GROUP BY playlist_id
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
    -- The playlist's last snapshot with the artist's entries names the artist.
    SELECT playlist_id,
           artist_id,
           count(*) AS entries,
           max(extracted_at) AS last_seen_at,
           max_by(dt, extracted_at) AS last_dt
    FROM credited_entries
    GROUP BY playlist_id, artist_id
)
SELECT a.playlist_id,
       a.artist_id,
       ar.name,
       a.entries,
       CAST(a.entries AS DOUBLE) / CAST(t.chart_entries AS DOUBLE) AS share
FROM artist_entries AS a
JOIN all_entries AS t ON t.playlist_id = a.playlist_id
LEFT JOIN artists AS ar
  ON ar.dt = a.last_dt AND ar.playlist_id = a.playlist_id
 AND ar.extracted_at = a.last_seen_at AND ar.artist_id = a.artist_id
ORDER BY a.playlist_id, a.entries DESC, a.artist_id
