from django.urls import path

from . import views

app_name = "photos"

urlpatterns = [
    path("", views.my_photos, name="mine"),
    path("status/", views.my_photos_status, name="status"),
    path("trash/", views.trash, name="trash"),
    path("reports/", views.my_reports, name="reports"),
    path("bulk/", views.bulk, name="bulk"),
    path("undo-trash/", views.undo_trash, name="undo-trash"),
    path("direct/", views.direct_upload, name="direct"),
    path("direct/confirm/", views.direct_upload_confirm, name="direct-confirm"),
    path("<uuid:uid>/", views.photo_detail, name="detail"),
    path("<uuid:uid>/image/", views.photo_file, {"kind": "image"}, name="image"),
    path("<uuid:uid>/display/", views.photo_file, {"kind": "display"}, name="display"),
    path("<uuid:uid>/visibility/", views.photo_visibility, name="visibility"),
    path("<uuid:uid>/appeal/", views.photo_appeal, name="appeal"),
    path("<uuid:uid>/thumbnail/", views.photo_file, {"kind": "thumbnail"}, name="thumbnail"),
    path("<uuid:uid>/delete/", views.photo_delete, name="delete"),
    path("<uuid:uid>/erase/", views.photo_erase, name="erase"),
]
