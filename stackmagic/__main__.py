import sys

from stackmagic.cli.main import main

sys.exit(main())
