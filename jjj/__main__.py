from jjj.cli import main

raise SystemExit(main())
