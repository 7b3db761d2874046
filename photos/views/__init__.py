"""Views by concern (Wagtail's shape): accounts, library (My photos and the trash), photo
(one photo and its file), gallery (public), uploads (browser-to-S3). The API is api.py."""
