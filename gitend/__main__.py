from gitend.cli import main

raise SystemExit(main())
