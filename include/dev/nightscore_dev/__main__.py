import sys

from nightscore_dev.cli import main

sys.exit(main())
