from nightscore_dev.faults.check import main

raise SystemExit(main())
