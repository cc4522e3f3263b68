-- The newest snapshot of each playlist in the window, and its name then: one row per playlist
-- with a snapshot in the window.
-- Parameters: playlists, first_day, last_day ('YYYY-MM-DD'; playlists: one id, or several
-- joined with ',').
SELECT playlist_id,
       max(extracted_at) AS newest,
       max_by(playlist_name, extracted_at) AS playlist_name
FROM snapshots
WHERE contains(split(?, ','), playlist_id) AND dt BETWEEN ? AND ?
GROUP BY playlist_id
ORDER BY playlist_id
