from oathdesk.cli.entry import main

raise SystemExit(main())
