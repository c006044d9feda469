from nightscore_dev.cluster.check import main

raise SystemExit(main())
