from etl_lib.cli import main

raise SystemExit(main())
