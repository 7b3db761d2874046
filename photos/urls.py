from django.urls import path

from .views import library, photo, uploads

app_name = "photos"

urlpatterns = [
    path("", library.my_photos, name="mine"),
    path("status/", library.my_photos_status, name="status"),
    path("trash/", library.trash, name="trash"),
    path("reports/", photo.my_reports, name="reports"),
    path("bulk/", library.bulk, name="bulk"),
    path("undo-trash/", library.undo_trash, name="undo-trash"),
    path("direct/", uploads.direct_upload, name="direct"),
    path("direct/confirm/", uploads.direct_upload_confirm, name="direct-confirm"),
    path("direct/parts/", uploads.direct_upload_parts, name="direct-parts"),
    path("direct/abort/", uploads.direct_upload_abort, name="direct-abort"),
    path("<uuid:uid>/", photo.photo_detail, name="detail"),
    path("<uuid:uid>/image/", photo.photo_file, {"kind": "image"}, name="image"),
    path("<uuid:uid>/display/", photo.photo_file, {"kind": "display"}, name="display"),
    path("<uuid:uid>/stream/", photo.photo_file, {"kind": "stream"}, name="stream"),
    path("<uuid:uid>/visibility/", photo.photo_visibility, name="visibility"),
    path("<uuid:uid>/appeal/", photo.photo_appeal, name="appeal"),
    path("<uuid:uid>/describe/", photo.photo_describe_view, name="describe"),
    path("<uuid:uid>/thumbnail/", photo.photo_file, {"kind": "thumbnail"}, name="thumbnail"),
    path("<uuid:uid>/delete/", library.photo_delete, name="delete"),
    path("<uuid:uid>/erase/", library.photo_erase, name="erase"),
]
