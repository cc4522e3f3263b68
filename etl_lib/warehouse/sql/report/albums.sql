-- The latest release date of every album seen in the window.
-- Parameters: first_day, last_day ('YYYY-MM-DD').
SELECT album_id,
       max_by(release_date, extracted_at) AS release_date,
       max_by(release_date_precision, extracted_at) AS release_date_precision
FROM albums
WHERE dt BETWEEN ? AND ?
GROUP BY album_id
