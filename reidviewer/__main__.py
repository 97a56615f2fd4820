"""``python -m reidviewer`` runs the command line (also under ``torchrun -m reidviewer``)."""
from reidviewer.cli import main

raise SystemExit(main())
