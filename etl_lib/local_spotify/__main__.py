from etl_lib.local_spotify.server import main

raise SystemExit(main())
