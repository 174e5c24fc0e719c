import sys

from taskspace_core.threads import configure_process

configure_process()  # before anything imports torch: OpenMP reads its wait policy when it loads

from precompute.cli import main  # noqa: E402

sys.exit(main())
