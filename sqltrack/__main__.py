import sys

from sqltrack.cli import main

sys.exit(main())
