"""``python -m photos.analysis.build``: convert the packaged weights into the ONNX models
and check every file's sha256 (what ``make models`` runs; see ``models.py``)."""

import sys

from ..models import main

sys.exit(main())
