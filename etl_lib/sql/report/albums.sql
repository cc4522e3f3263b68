-- Every album's latest release date.
SELECT album_id, release_date, release_date_precision FROM latest_albums
