import sys

from amphub.cli import main

sys.exit(main())
