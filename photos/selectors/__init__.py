"""Reads, by concern: labels (thresholds, visibility, taxonomy), search (the public
gallery's query grammar), titles (how photos read on pages) and library (an owner's
own photos). Who may see which photo is ``Photo.objects.public()`` and
``visible_to(user)`` (photos/querysets.py)."""
