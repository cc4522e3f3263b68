-- The newest snapshot of one playlist up to the window's last day, and its name then.
-- Parameters: playlist_id, last_day ('YYYY-MM-DD').
SELECT max(extracted_at) AS newest, max_by(playlist_name, extracted_at) AS playlist_name
FROM snapshots
WHERE playlist_id = ? AND dt <= ?
