"""``python -m stackmagic.config``: local.conf blocks for shell code (see localconf.main)."""

import sys

from stackmagic.config.localconf import main

sys.exit(main())
