"""Writes, by concern: photos (create, visibility, trash), erasure, uploads, moderation,
review. Functions are named ``<entity>_<action>``, take keyword arguments, enforce
who may do what, and write the audit entry; each says in its docstring what it
guarantees. Callers import the module they need (``from photos.services import
erasure``)."""
