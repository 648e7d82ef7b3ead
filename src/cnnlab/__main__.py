"""`python -m cnnlab` (and `torchrun -m cnnlab`) run the same command as `cnnlab`."""
import sys

from .cli.main import main

sys.exit(main())
