"""`python -m ladder_tf COMMAND ...`: the same as the `ladder` console script."""
from ladder_tf.commands import main

raise SystemExit(main())
