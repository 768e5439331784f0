from __future__ import annotations

import pytest

from inventory.models import Category
from inventory.services import category_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def tree(db):
    electronics = category_create(name="Electronics")
    audio = category_create(name="Audio", parent=electronics)
    headphones = category_create(name="Headphones", parent=audio)
    home = category_create(name="Home", description="For the house")
    return {"electronics": electronics, "audio": audio, "headphones": headphones, "home": home}


def test_list_categories_anonymous(api_client, tree, django_assert_num_queries):
    with django_assert_num_queries(2):
        response = api_client.get("/api/v1/categories/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert [c["path"] for c in body["results"]] == [
        "Electronics",
        "Electronics/Audio",
        "Electronics/Audio/Headphones",
        "Home",
    ]
    assert body["results"][1] == {
        "id": tree["audio"].pk,
        "name": "Audio",
        "slug": "audio",
        "parent": tree["electronics"].pk,
        "path": "Electronics/Audio",
        "depth": 1,
        "description": "",
    }


@pytest.mark.parametrize("page_size", [1, 50])
def test_list_categories_query_count_is_fixed(
    api_client, tree, page_size, django_assert_num_queries
):
    with django_assert_num_queries(2):
        response = api_client.get(f"/api/v1/categories/?page_size={page_size}")
    assert len(response.json()["results"]) == min(page_size, 4)


def test_list_categories_by_parent(api_client, tree):
    roots = api_client.get("/api/v1/categories/?parent=null").json()
    assert [c["name"] for c in roots["results"]] == ["Electronics", "Home"]
    children = api_client.get(f"/api/v1/categories/?parent={tree['electronics'].pk}").json()
    assert [c["name"] for c in children["results"]] == ["Audio"]
    response = api_client.get("/api/v1/categories/?parent=abc")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "parent"


def test_category_detail_with_children(api_client, tree):
    response = api_client.get(f"/api/v1/categories/{tree['audio'].pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["path"] == "Electronics/Audio"
    assert [child["name"] for child in body["children"]] == ["Headphones"]
    assert api_client.get("/api/v1/categories/999999/").status_code == 404


def test_category_tree_in_one_query(api_client, tree, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = api_client.get("/api/v1/categories/tree/")
    assert response.status_code == 200
    assert response.json() == [
        {
            "id": tree["electronics"].pk,
            "name": "Electronics",
            "slug": "electronics",
            "path": "Electronics",
            "depth": 0,
            "children": [
                {
                    "id": tree["audio"].pk,
                    "name": "Audio",
                    "slug": "audio",
                    "path": "Electronics/Audio",
                    "depth": 1,
                    "children": [
                        {
                            "id": tree["headphones"].pk,
                            "name": "Headphones",
                            "slug": "headphones",
                            "path": "Electronics/Audio/Headphones",
                            "depth": 2,
                            "children": [],
                        }
                    ],
                }
            ],
        },
        {
            "id": tree["home"].pk,
            "name": "Home",
            "slug": "home",
            "path": "Home",
            "depth": 0,
            "children": [],
        },
    ]


def test_staff_creates_category(staff_client, tree):
    response = staff_client.post(
        "/api/v1/categories/",
        {"name": "Speakers", "parent": tree["audio"].pk, "description": "Loud"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["path"], body["depth"], body["slug"], body["description"]) == (
        "Electronics/Audio/Speakers",
        2,
        "speakers",
        "Loud",
    )


@pytest.mark.parametrize(
    ("payload", "attr"),
    [
        ({"name": ""}, "name"),
        ({"name": "A/B"}, "name"),
        ({"name": "Audio", "parent": 999999}, "parent"),
        ({"name": "X", "slug": "not a slug"}, "slug"),
    ],
)
def test_create_category_bad_input(staff_client, tree, payload, attr):
    response = staff_client.post("/api/v1/categories/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == attr
    assert Category.objects.count() == 4


def test_duplicate_sibling_name_is_400(staff_client, tree):
    response = staff_client.post(
        "/api/v1/categories/", {"name": "audio", "parent": tree["electronics"].pk}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "name"
    assert Category.objects.count() == 4


def test_customer_and_anonymous_cannot_write(customer_client, api_client, tree):
    assert customer_client.post("/api/v1/categories/", {"name": "X"}).status_code == 403
    assert api_client.post("/api/v1/categories/", {"name": "X"}).status_code == 401
    assert api_client.delete(f"/api/v1/categories/{tree['home'].pk}/").status_code == 401
    assert Category.objects.count() == 4


def test_move_category(staff_client, tree):
    response = staff_client.patch(
        f"/api/v1/categories/{tree['audio'].pk}/", {"parent": tree["home"].pk}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["path"] == "Home/Audio"
    tree["headphones"].refresh_from_db()
    assert (tree["headphones"].full_path, tree["headphones"].depth) == ("Home/Audio/Headphones", 2)


def test_move_under_own_subtree_is_400(staff_client, tree):
    response = staff_client.patch(
        f"/api/v1/categories/{tree['electronics'].pk}/",
        {"parent": tree["headphones"].pk},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "code": "invalid_parent",
        "detail": "A category cannot be moved under itself or one of its descendants.",
        "attr": "parent",
    }
    tree["electronics"].refresh_from_db()
    assert (tree["electronics"].parent, tree["electronics"].full_path) == (None, "Electronics")


def test_delete_category(staff_client, tree, make_product):
    response = staff_client.delete(f"/api/v1/categories/{tree['electronics'].pk}/")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "protected"
    make_product(category=tree["home"])
    assert staff_client.delete(f"/api/v1/categories/{tree['home'].pk}/").status_code == 409
    assert staff_client.delete(f"/api/v1/categories/{tree['headphones'].pk}/").status_code == 204
    assert not Category.objects.filter(pk=tree["headphones"].pk).exists()
    assert Category.objects.filter(pk__in=[tree["electronics"].pk, tree["home"].pk]).count() == 2
