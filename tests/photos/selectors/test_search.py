"""Search that finds (issue 12, finding 2): one box for labels (with their kinds) and text
found in photos, always for a reason the page shows; suggestions from the taxonomy;
clickable chips; top labels of the results; newest or most relevant first; the same in
the API."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from infra.functions.labeler.record import Box, Label, LabelRecord, TextDetection
from photos.selectors import search
from photos.models import Photo
from photos.apply import apply_records

pytestmark = pytest.mark.django_db
STAMP = "2026-11-25T08:00:00.000000Z"


def photo(name: str, labels: dict[str, float] = (), text: dict[str, float] = (), *, age_days: int = 0,
          parents: dict[str, tuple] = ()) -> Photo:
    """A public photo whose analysis found ``labels`` and ``text`` ({line: confidence};
    each line's words are WORD detections too)."""
    key = f"uploads/{name}"
    Photo.objects.create(image=key, original_filename=name, visibility="public",
                         created_at=timezone.now() - timedelta(days=age_days))
    detections = []
    for line, confidence in dict(text).items():
        detections.append(TextDetection(text=line, type="LINE", confidence=confidence, box=Box(0, 0, 1, 1)))
        detections += [TextDetection(text=w, type="WORD", confidence=confidence, box=Box(0, 0, 1, 1)) for w in line.split()]
    apply_records([LabelRecord(bucket="b", key=key, status="LABELED", engine="local", analyzed_at=STAMP, updated_at=STAMP,
                               labels=tuple(Label(name=n, confidence=c, parents=tuple(dict(parents).get(n, ())))
                                            for n, c in dict(labels).items()),
                               text=tuple(detections))])
    return Photo.objects.get(image=key)


def names(response) -> list[str]:
    """The file names behind the gallery's cards, in order (the page itself never shows them)."""
    uids = re.findall(r'<li class="photo" data-id="([0-9a-f-]+)"', response.content.decode())
    return [Photo.objects.get(uid=u).original_filename for u in uids]


def test_text_found_in_a_photo_is_searchable_in_any_case_and_as_a_phrase(client):
    photo("shop.jpg", {"Building": 90.0}, {"OPEN DAILY 9 TO 5": 97.0})
    photo("faint.jpg", {"Building": 90.0}, {"OPEN LATE": 40.0})  # under the display threshold: not shown
    photo("cat.jpg", {"Cat": 95.0})

    assert names(client.get("/gallery/?q=open")) == ["shop.jpg"]
    assert names(client.get("/gallery/?q=%22open+daily%22")) == ["shop.jpg"]
    assert names(client.get("/gallery/?q=building+NOT+daily")) == ["faint.jpg"]
    card = client.get("/gallery/?q=open").content.decode()
    assert "“OPEN DAILY 9 TO 5”" in card  # the reason it matched is on the card
    assert "OPEN LATE" not in client.get("/gallery/").content.decode()


def test_a_label_under_the_display_threshold_finds_nothing(client):
    photo("stars.jpg", {"Person": 20.0, "Night": 90.0})

    assert names(client.get("/gallery/?q=person")) == []


def test_most_relevant_puts_the_strongest_match_first_newest_the_latest(client):
    photo("old-sure-dog.jpg", {"Dog": 99.0}, age_days=5)
    photo("new-unsure-dog.jpg", {"Dog": 71.0})
    photo("dog-in-text.jpg", {"Poster": 90.0}, {"DOG SHOW": 85.0}, age_days=2)

    assert names(client.get("/gallery/?q=dog")) == ["new-unsure-dog.jpg", "dog-in-text.jpg", "old-sure-dog.jpg"]
    assert names(client.get("/gallery/?q=dog&sort=relevance")) == ["old-sure-dog.jpg", "dog-in-text.jpg",
                                                                     "new-unsure-dog.jpg"]
    assert names(client.get("/gallery/?q=dog&sort=sideways")) == names(client.get("/gallery/?q=dog"))


def test_parents_match_their_kinds_and_rank_by_the_kind_found(client):
    photo("dog.jpg", {"Dog": 93.0, "Animal": 93.0}, parents={"Dog": ("Animal",)})
    photo("bird.jpg", {"Bird": 80.0}, parents={"Bird": ("Animal",)}, age_days=1)

    assert names(client.get("/gallery/?q=animal&sort=relevance")) == ["dog.jpg", "bird.jpg"]


def test_top_labels_count_the_results_and_refine_the_search(client):
    for n in range(3):
        photo(f"dog-{n}.jpg", {"Dog": 90.0, "Grass": 80.0 if n else 30.0})
    photo("cat.jpg", {"Cat": 90.0})

    page = client.get("/gallery/?q=dog").content.decode()

    facets = page.split('<nav class="facets"')[1].split("</nav>")[0]
    # Grass at 30 % is not shown, so not counted; Dog is the search itself, not a refinement.
    assert re.findall(r">(\w+) <small>(\d+)</small>", facets) == [("Grass", "2")]
    assert 'href="?q=dog%20Grass&amp;sort=newest"' in facets
    assert "in the newest" not in facets  # every result was counted


def test_label_chips_are_links_to_their_search(client):
    photo("dog.jpg", {"Dog": 90.0})

    page = client.get("/gallery/").content.decode()

    assert '<a class="chip" href="?q=Dog">Dog</a>' in page
    assert "dog.jpg" not in page  # public pages name photos by their labels, not their files


def test_public_titles_are_labels_specific_first_never_the_file_name(client):
    cat = photo("IMG_2931 john-smith passport.jpg", {"Animal": 95.0, "Cat": 95.0, "Sofa": 80.0},
                parents={"Cat": ("Animal",)})
    bare = photo("secret-plans.jpg")

    card = client.get("/gallery/").content.decode()
    page = client.get(f"/gallery/{cat.uid}/").content.decode()

    assert "john-smith" not in card + page and "secret-plans" not in card
    assert "<h1>Cat and Sofa</h1>" in page and "<title>Cat and Sofa</title>" in page  # not their parent Animal
    assert client.get(f"/api/photos/{bare.uid}/").json()["title"] == "Untitled photo"


def test_a_portrait_is_titled_by_the_person_not_the_face(client):
    """Grace Hopper's photo was titled "Face and Tie"."""
    portrait = photo("hopper.jpg", {"Person": 98.0, "Face": 97.0, "Head": 97.0, "Tie": 80.0},
                     parents={"Face": ("Head", "Person"), "Head": ("Person",)})

    assert client.get(f"/api/photos/{portrait.uid}/").json()["title"] == "Person and Tie"


def test_suggestions_come_from_public_photos_as_one_types(client):
    photo("a.jpg", {"Dog": 90.0, "Dining Table": 80.0, "Doughnut": 70.0, "Animal": 90.0}, parents={"Dog": ("Animal",)})

    assert client.get("/api/labels/?prefix=do").json()["labels"] == ["Dog", "Doughnut"]
    assert client.get("/api/labels/?prefix=ani").json()["labels"] == ["Animal"]  # parents too
    assert client.get("/api/labels/?prefix=tab").json() == {"labels": ["Dining Table"],
                                                            "suggestions": [{"name": "Dining Table", "photos": 1}]}
    assert client.get("/api/labels/?prefix=").json() == {"labels": [], "suggestions": []}
    assert client.get(f"/api/labels/?prefix={'x' * 101}").status_code == 400


def test_the_api_searches_and_sorts_the_same_way(client):
    photo("old-sure-dog.jpg", {"Dog": 99.0}, age_days=5)
    photo("new-unsure-dog.jpg", {"Dog": 71.0})
    photo("shop.jpg", {"Building": 90.0}, {"OPEN DAILY": 97.0})

    def api(query):
        return [Photo.objects.get(uid=p["id"]).original_filename for p in client.get(f"/api/photos/?{query}").json()["results"]]

    assert api("q=dog&sort=relevance") == ["old-sure-dog.jpg", "new-unsure-dog.jpg"]
    assert api("q=dog") == ["new-unsure-dog.jpg", "old-sure-dog.jpg"]
    assert api("q=open") == ["shop.jpg"]
    bad = client.get("/api/photos/?sort=sideways")
    assert bad.status_code == 400 and bad.json() == {"error": "sort must be one of newest, taken, relevance."}


def test_most_relevant_ranks_a_bounded_window_of_the_newest_matches(client, monkeypatch):

    monkeypatch.setattr(search, "RELEVANCE_WINDOW", 2)
    photo("oldest-surest-dog.jpg", {"Dog": 99.0}, age_days=9)
    photo("newer-dog.jpg", {"Dog": 71.0}, age_days=1)
    photo("newest-dog.jpg", {"Dog": 80.0})

    assert names(client.get("/gallery/?q=dog&sort=relevance")) == ["newest-dog.jpg", "newer-dog.jpg"]


def test_a_phrase_matches_words_read_as_separate_lines_and_cards_show_text_in_reading_order(client):
    key = "uploads/sign.jpg"
    Photo.objects.create(image=key, original_filename="sign.jpg", visibility="public")
    apply_records([LabelRecord(bucket="b", key=key, status="LABELED", engine="local", analyzed_at=STAMP, updated_at=STAMP,
                               labels=(Label(name="Sign", confidence=90.0),), text=tuple(
        TextDetection(text=w, type=t, confidence=c, box=Box(left, top, 0.2, 0.1))
        for w, c, left, top in (("COFFEE", 99.0, 0.1, 0.6), ("DAILY", 98.0, 0.5, 0.2), ("OPEN", 90.0, 0.1, 0.2))
        for t in ("LINE", "WORD")))])

    assert names(client.get("/gallery/?q=%22open+daily%22")) == ["sign.jpg"]
    card = client.get("/gallery/?q=open").content.decode()
    assert card.index("“OPEN”") < card.index("“DAILY”") < card.index("“COFFEE”")  # as read, not by confidence


def test_words_of_one_line_read_left_to_right_though_their_tops_differ_slightly(client):
    key = "uploads/bakery.jpg"
    Photo.objects.create(image=key, original_filename="bakery.jpg", visibility="public")
    apply_records([LabelRecord(bucket="b", key=key, status="LABELED", engine="local", analyzed_at=STAMP, updated_at=STAMP,
                               labels=(Label(name="Text", confidence=99.0),), text=tuple(
        TextDetection(text=w, type="LINE", confidence=c, box=Box(left, top, 0.2, 0.1))
        for w, c, left, top in (("FRESH BREAD", 95.0, 0.2, 0.1), ("DAILY", 99.0, 0.55, 0.4196),
                                ("OPEN", 90.0, 0.2, 0.4236), ("SINCE 1985", 97.0, 0.2, 0.7))))])

    card = client.get("/gallery/").content.decode()
    api = client.get("/api/photos/").json()["results"][0]

    assert card.index("FRESH BREAD") < card.index("OPEN") < card.index("DAILY") < card.index("SINCE 1985")
    assert api["text"] == ["FRESH BREAD", "OPEN", "DAILY", "SINCE 1985"]  # why a text search matched
    assert api["title"] == "“FRESH BREAD”"  # "Text" says there is text, not what it is


def test_gallery_cards_tick_approved_labels(client):
    from photos.models import Label as LabelRow

    photo("dog.jpg", {"Dog": 90.0})
    LabelRow.objects.filter(name="Dog").update(review_state="approved")

    assert '<a class="chip" href="?q=Dog">Dog ✓</a>' in client.get("/gallery/").content.decode()


def test_a_plural_finds_its_label_and_is_still_found_as_text(client):
    """People type "horses": the label is Horse. The word itself still matches text."""
    photo("herd.jpg", {"Horse": 93.0}, age_days=1)
    photo("sign.jpg", {"Building": 90.0}, {"HORSES FOR SALE": 96.0})
    photo("puppy.jpg", {"Puppy": 91.0}, age_days=2)
    photo("glasses.jpg", {"Glasses": 92.0, "Glass": 88.0}, age_days=3)
    photo("window.jpg", {"Glass": 94.0}, age_days=4)

    assert names(client.get("/gallery/?q=Horses")) == ["sign.jpg", "herd.jpg"]
    assert names(client.get("/gallery/?q=puppies")) == ["puppy.jpg"]
    assert names(client.get("/gallery/?q=Glasses")) == ["glasses.jpg"]  # a label of its own: not "Glass"
    assert names(client.get("/gallery/?q=Puppy+OR+Horse+NOT+horses")) == ["puppy.jpg"]  # NOT takes the plural too


def test_or_takes_either_and_binds_to_its_neighbours(client):
    photo("cat.jpg", {"Cat": 95.0, "Sofa": 80.0})
    photo("dog.jpg", {"Dog": 94.0, "Grass": 85.0}, age_days=1)
    photo("bird.jpg", {"Bird": 93.0, "Grass": 82.0}, age_days=2)

    assert names(client.get("/gallery/?q=cat+OR+dog")) == ["cat.jpg", "dog.jpg"]
    assert names(client.get("/gallery/?q=cat+or+dog+OR+bird")) == ["cat.jpg", "dog.jpg", "bird.jpg"]
    assert names(client.get("/gallery/?q=grass+dog+OR+bird")) == ["dog.jpg", "bird.jpg"]  # Grass AND (Dog OR Bird)
    assert names(client.get("/gallery/?q=cat+OR+dog+NOT+grass")) == ["cat.jpg"]
    assert names(client.get("/gallery/?q=OR+cat")) == ["cat.jpg"]  # a stray OR is no term
    assert client.get("/api/photos/", {"q": "cat OR dog"}).json()["results"][0]["title"]


def test_an_excluded_word_breaks_an_or_and_a_plural_phrase_finds_its_label(client):
    """Review findings: "grass -cat OR dog" is Grass AND NOT Cat AND Dog (OR joins nothing
    across an exclusion); "Dining Tables" is the Dining Table label, not two words."""
    photo("lawn-dog.jpg", {"Dog": 94.0, "Grass": 85.0})
    photo("sofa-dog.jpg", {"Dog": 93.0, "Couch": 80.0}, age_days=1)
    photo("dinner.jpg", {"Dining Table": 90.0}, age_days=2)

    assert names(client.get("/gallery/?q=grass+-cat+OR+dog")) == ["lawn-dog.jpg"]
    assert names(client.get("/gallery/?q=grass+NOT+cat+OR+dog")) == ["lawn-dog.jpg"]
    assert names(client.get("/gallery/?q=Dining+Tables")) == ["dinner.jpg"]


def test_a_search_is_capped_in_terms_however_many_ors_it_strings(client):
    """Each term costs queries: 8 alternatives and 8 exclusions at most, whatever the OR."""
    groups, excluded = search.search_groups(" OR ".join(f"word{n}" for n in range(12)) + " "
                                            + " ".join(f"-x{n}" for n in range(30)))

    assert sum(len(g) for g in groups) == search.MAX_SEARCH_TERMS and len(excluded) == search.MAX_SEARCH_TERMS


def test_words_the_text_reader_split_are_found_joined(client):
    """The reader read a sign's CONTINUE as "CONTI NUE": a search for continue found
    nothing. Long neighbours are not joined ("SPECIAL OFFER" is two words)."""
    sign = photo("sign.jpg", text={"CONTI NUE": 93.0, "SPECIAL OFFER": 95.0})

    for query in ("continue", "CONTINUE", "conti", "special offer"):
        assert [r["id"] for r in client.get("/api/photos/", {"q": query}).json()["results"]] == [str(sign.uid)], query
    assert client.get("/api/photos/", {"q": "specialoffer"}).json()["results"] == []
    page = client.get(f"/gallery/{sign.uid}/").content.decode()
    assert "CONTI NUE" in page and "CONTINUE" not in page  # what the photo shows is unchanged


def test_a_facet_after_a_dangling_operator_narrows_the_search():
    """"cat OR" and the chip Dog used to link "cat OR Dog", which widens the search."""
    from photos.selectors.search import refined

    assert refined("cat OR", "Dog") == "cat Dog"
    assert refined("cat NOT", "Dog") == "cat Dog"
    assert refined("", "Dog") == "Dog"
    assert refined("Furniture", "Dining Table") == 'Furniture "Dining Table"'


def test_an_alias_finds_its_label(client):
    """Rekognition's Aliases (the local detector's too): Person is also Human. "Human"
    and "humans" found nothing."""
    key = "uploads/crowd.jpg"
    Photo.objects.create(image=key, original_filename="crowd.jpg", visibility="public")
    apply_records([LabelRecord(bucket="b", key=key, status="LABELED", engine="local", analyzed_at=STAMP, updated_at=STAMP,
                               labels=(Label(name="Person", confidence=96.0, aliases=("Human",)),))])
    crowd = Photo.objects.get(image=key)

    for query in ("human", "Humans", "person"):
        assert [r["id"] for r in client.get("/api/photos/", {"q": query}).json()["results"]] == [str(crowd.uid)], query


def test_relevance_counts_titles_and_every_word_of_a_phrase(client, django_user_model):
    """A photo found by its title scored 0, and so did a phrase found as text: both sank
    below photos that matched less."""
    from photos.services.photos import photo_describe

    owner = django_user_model.objects.create_user("describer", password="x")
    titled = photo("titled.jpg", {"Dog": 75.0}, age_days=2)
    Photo.objects.filter(pk=titled.pk).update(owner=owner)
    photo_describe(photo_id=titled.id, actor=owner, title="Rex's first day at the beach", caption="")
    labelled = photo("labelled.jpg", {"Dog": 95.0, "Beach": 71.0}, age_days=1)
    sign = photo("sign.jpg", {"Dog": 80.0}, {"OPEN DAILY": 99.0})
    plain = photo("plain.jpg", {"Dog": 90.0})

    def ranked(q):
        return [r["id"] for r in client.get("/api/photos/", {"q": q, "sort": "relevance"}).json()["results"]]

    assert ranked("dog beach") == [str(titled.uid), str(labelled.uid)]  # 75 + 100 before 95 + 71
    assert ranked('dog "open daily"')[0] == str(sign.uid)
    assert ranked("rex's beach") == [str(titled.uid)]  # the title's words, split as stored
    assert str(plain.uid) not in ranked("dog beach")


def test_an_engine_that_reports_no_aliases_does_not_wipe_them():
    from photos.models import LabelTaxonomy

    for key, aliases in (("uploads/a1.jpg", ("Human",)), ("uploads/a2.jpg", ())):
        Photo.objects.create(image=key, original_filename=key, visibility="public")
        apply_records([LabelRecord(bucket="b", key=key, status="LABELED", engine="local", analyzed_at=STAMP,
                                   updated_at=STAMP, labels=(Label(name="Person", confidence=96.0, aliases=aliases),))])

    assert LabelTaxonomy.objects.get(name="Person").aliases == ["Human"]
