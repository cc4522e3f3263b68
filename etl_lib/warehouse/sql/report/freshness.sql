-- The newest snapshot of one playlist in the window, and its name then.
-- Parameters: playlist_id, first_day, last_day ('YYYY-MM-DD').
SELECT max(extracted_at) AS newest, max_by(playlist_name, extracted_at) AS playlist_name
FROM snapshots
WHERE playlist_id = ? AND dt BETWEEN ? AND ?
