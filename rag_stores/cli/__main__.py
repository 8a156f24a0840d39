"""`python -m rag_stores.cli`: the `rag-stores` command."""

import sys

from . import main

sys.exit(main())
