from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from photos import api
from photos import views as photo_views

urlpatterns = [
    path("", photo_views.home, name="home"),
    path("admin/", admin.site.urls),
    # Pages that do not name one (the admin's) make browsers ask here.
    path("favicon.ico", RedirectView.as_view(url=static("photos/favicon.svg"), permanent=True)),
    path("accounts/signup/", photo_views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("photos/", include("photos.urls")),
    path("api/", api.index, name="api-index"),
    path("api/docs/", api.docs, name="api-docs"),
    path("api/photos/", api.photos, name="api-photos"),
    path("api/labels/", api.labels, name="api-labels"),
    path("api/photos/<uuid:uid>/", api.photo_detail, name="api-photo"),
    path("api/schema/", api.schema, name="api-schema"),
    path("gallery/", photo_views.gallery, name="gallery"),
    path("gallery/<uuid:uid>/", photo_views.gallery_photo, name="gallery_photo"),
]

handler404 = "photos.api.not_found"
