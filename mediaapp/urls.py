from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from photos import api
from photos.views import about, accounts, gallery

urlpatterns = [
    path("", accounts.home, name="home"),
    path("admin/", admin.site.urls),
    # Pages that do not name one (the admin's) make browsers ask here.
    path("favicon.ico", RedirectView.as_view(url=static("photos/favicon.svg"), permanent=True)),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("photos/", include("photos.urls")),
    path("api/", api.index, name="api-index"),
    path("api/docs/", api.docs, name="api-docs"),
    path("api/photos/", api.photos, name="api-photos"),
    path("api/labels/", api.labels, name="api-labels"),
    path("api/photos/<uuid:uid>/", api.photo_detail, name="api-photo"),
    path("api/schema/", api.schema, name="api-schema"),
    path("source/", about.source_code, name="source"),
    path("gallery/", gallery.gallery, name="gallery"),
    path("gallery/<uuid:uid>/", gallery.gallery_photo, name="gallery_photo"),
]

handler404 = "photos.api.not_found"
