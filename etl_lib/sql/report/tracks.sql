-- Every track's latest name and album.
SELECT track_id, name, album_id FROM latest_tracks
