"""The admin, split by concern: photos, review (editors), moderation, audit, settings
(thresholds), with the shared filters and forms. Importing the package registers them.

Every state change an admin screen offers goes through the services that enforce the
rules and write the audit entry (photos/review.py, photos/moderation.py,
photos/services.py); model fields that no service changes are read-only here.
"""

from django.contrib import admin

from ..selectors.search import parse_label_query  # noqa: F401  (tested through here)
from . import accounts, audit, moderation, photos, review, settings  # noqa: F401  (registers the model admins)
from .filters import COUNT_CAP, CappedPaginator  # noqa: F401
from .photos import PhotoAdmin  # noqa: F401

# The model list down the left of every page took 260 px from the tables, which were cut
# off at 1280 px; the index and the breadcrumbs lead everywhere it did.
admin.site.enable_nav_sidebar = False
admin.site.site_header = "mediaapp administration"
admin.site.site_title = "mediaapp admin"
