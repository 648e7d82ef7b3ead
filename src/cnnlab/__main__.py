"""`python -m cnnlab` (and `torchrun -m cnnlab`) run the same command as `cnnlab`."""
import sys

try:
    from .cli.main import main
except KeyboardInterrupt:  # Ctrl-C in the first instant: no traceback for it
    sys.exit(130)

sys.exit(main())
