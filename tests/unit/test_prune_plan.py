"""The prune planner (amibake.plugins.amazon.prune_plan): what is removed and kept, and why."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from amibake.plugins.amazon.prune_plan import (
    UNTAGGED,
    Image,
    Rules,
    Usage,
    human_age,
    plan,
    selects,
    wildcard_match,
)

NOW = datetime(2026, 6, 1)


def img(n: int, build: str = "web", region: str = "us-east-1", snaps: tuple[str, ...] | None = None,
        days_old: float | None = None, **kw: object) -> Image:
    created = NOW - timedelta(days=days_old if days_old is not None else 100 - n)
    tags = {"amibake:build": build} if build else {}
    return Image(id=f"ami-{region[-1]}{build}{n:03d}", region=region, name=f"{build or 'x'}-{n}",
                 created=created, tags=tags,
                 snapshots=snaps if snaps is not None else (f"snap-{region[-1]}{build}{n:03d}",), **kw)  # type: ignore[arg-type]


def run(images: list[Image], usage: Usage | None = None, selected: list[str] | None = None,
        **rules: object) -> dict[str, tuple[str, str]]:
    p = plan(images, selected if selected is not None else [i.id for i in images], usage or Usage(),
             Rules(now=NOW, **rules))  # type: ignore[arg-type]
    return {d.image.id: (d.action, "; ".join(d.reasons)) for d in p.images}


def test_keep_n_keeps_the_newest_n_per_build_and_region() -> None:
    images = [img(n) for n in range(5)] + [img(n, "api") for n in range(3)] + [img(n, region="eu-west-1")
                                                                              for n in range(2)]
    got = run(images, keep=2)
    assert {k for k, v in got.items() if v[0] == "remove"} == {"ami-1web000", "ami-1web001", "ami-1web002",
                                                               "ami-1api000"}
    assert got["ami-1web004"][1] == "newest of build web in us-east-1 (--keep 0 to remove it)"
    assert got["ami-1web003"][1] == "one of the newest 2 of build web in us-east-1"
    assert got["ami-1web000"][1] == "number 5 from the newest of build web (--keep 2)"
    assert got["ami-1web001"][0] == "remove"


def test_the_newest_goes_only_with_keep_0() -> None:
    images = [img(n) for n in range(3)]
    assert run(images, older_than=0.0)["ami-1web002"][0] == "keep"
    assert run(images, keep=1)["ami-1web002"][0] == "keep"
    assert {v[0] for v in run(images, keep=0).values()} == {"remove"}


def test_older_than_keeps_the_recent_ones_and_combines_with_keep() -> None:
    images = [img(0, days_old=40), img(1, days_old=20), img(2, days_old=10), img(3, days_old=1)]
    got = run(images, older_than=15 * 86400.0)
    assert [got[i.id][0] for i in images] == ["remove", "remove", "keep", "keep"]
    assert got[images[2].id][1] == "newer than --older-than 15d (age 10d)"
    assert got[images[0].id][1] == "age 40d (--older-than 15d)"
    got = run(images, older_than=15 * 86400.0, keep=3)
    assert [got[i.id][0] for i in images] == ["remove", "keep", "keep", "keep"]
    got = run(images, older_than=0.0, keep=0)
    assert {v[0] for v in got.values()} == {"remove"}


def test_every_protection_keeps_an_image_and_is_its_reason() -> None:
    images = [img(n) for n in range(8)] + [img(99)]
    usage = Usage()
    usage.use(images[0].id, "instance i-1 (stopped)")
    usage.use(images[1].id, "launch template lt (lt-1) version 3")
    usage.use(images[1].id, "launch template lt (lt-1) version 3")  # once
    usage.use(images[2].id, "SSM parameter /images/web (us-east-1)")
    images[3] = Image(**{**images[3].__dict__, "public": True})
    images[4] = Image(**{**images[4].__dict__, "shared_with": ("111122223333",)})
    images[5] = Image(**{**images[5].__dict__, "protected": True})
    images[6] = Image(**{**images[6].__dict__, "state": "pending"})
    got = run(images, usage, keep=0)
    assert got[images[0].id] == ("keep", "instance i-1 (stopped)")
    assert got[images[1].id] == ("keep", "launch template lt (lt-1) version 3")
    assert got[images[2].id] == ("keep", "SSM parameter /images/web (us-east-1)")
    assert got[images[3].id] == ("keep", "public (--include-shared to remove)")
    assert got[images[4].id] == ("keep", "shared with 111122223333 (--include-shared to remove)")
    assert got[images[5].id] == ("keep", "deregistration protection is on")
    assert got[images[6].id] == ("keep", "state pending")
    assert got[images[7].id][0] == "remove"
    shared = run(images, usage, keep=0, include_shared=True)
    assert shared[images[3].id][0] == shared[images[4].id][0] == "remove"
    assert shared[images[5].id][0] == "keep"  # protection is not sharing


def test_an_in_use_image_also_gets_its_rule_reason() -> None:
    images = [img(0), img(1)]
    usage = Usage()
    usage.use(images[1].id, "instance i-9 (running)")
    assert run(images, usage, keep=1)[images[1].id] == (
        "keep", "instance i-9 (running); newest of build web in us-east-1 (--keep 0 to remove it)")


def test_a_snapshot_another_image_uses_is_kept() -> None:
    shared = "snap-shared"
    old = img(0, snaps=("snap-own0", shared))
    other = img(1, snaps=(shared,))
    newest = img(2)
    outsider = img(5, "unselected", snaps=("snap-own0",))
    p = plan([old, other, newest, outsider], [old.id, other.id, newest.id], Usage(), Rules(keep=2, now=NOW))
    snaps = {s.id: s for s in p.snapshots}
    assert [d.image.id for d in p.removed_images] == [old.id]
    assert not snaps[shared].remove and snaps[shared].reasons == (f"also used by {other.id}",)
    assert not snaps["snap-own0"].remove and snaps["snap-own0"].reasons == (f"also used by {outsider.id}",)
    # both removed: the shared snapshot is deleted once
    p = plan([old, other, newest], [old.id, other.id, newest.id], Usage(), Rules(keep=1, now=NOW))
    assert sorted(s.id for s in p.deleted_snapshots) == ["snap-own0", shared]


def test_a_snapshot_of_the_same_id_in_another_region_does_not_count() -> None:
    a = img(0, snaps=("snap-x",))
    b = img(0, region="eu-west-1", snaps=("snap-x",))
    p = plan([a, b, img(1)], [a.id, img(1).id], Usage(), Rules(keep=1, now=NOW))
    assert [s.id for s in p.deleted_snapshots] == ["snap-x"]


def test_a_shared_snapshot_is_kept_unless_include_shared() -> None:
    images = [img(0), img(1)]
    usage = Usage()
    usage.share(images[0].snapshots[0], "shared with 111122223333")
    p = plan(images, [i.id for i in images], usage, Rules(keep=1, now=NOW))
    assert p.snapshots[0].reasons == ("shared with 111122223333 (--include-shared to delete)",)
    assert not p.snapshots[0].remove
    p = plan(images, [i.id for i in images], usage, Rules(keep=1, now=NOW, include_shared=True))
    assert p.snapshots[0].remove


def test_untagged_images_form_one_group_per_region() -> None:
    images = [img(n, build="") for n in range(3)]
    got = run(images, keep=1)
    assert images[0].build == UNTAGGED
    assert [got[i.id][0] for i in images] == ["remove", "remove", "keep"]


def test_ties_in_creation_date_are_ordered_by_the_created_tag_then_the_name() -> None:
    same = NOW - timedelta(days=3)
    a = Image("ami-a", "r", "b-2", same, {"amibake:build": "b", "amibake:created": "2026-01-02T00:00:00Z"})
    b = Image("ami-b", "r", "b-1", same, {"amibake:build": "b", "amibake:created": "2026-01-03T00:00:00Z"})
    c = Image("ami-c", "r", "b-3", same, {"amibake:build": "b"})
    got = run([a, b, c], keep=1)
    assert got["ami-b"][0] == "keep" and got["ami-a"][0] == got["ami-c"][0] == "remove"


def test_selection() -> None:
    i = Image("ami-1", "r", "web-2026-01", tags={"amibake:build": "web", "team": "a"})
    assert selects(i, ["web-*"], {}, None)
    assert selects(i, ["api-*", "web-????-??"], {"team": "a"}, ["web", "api"])
    assert not selects(i, ["web"], {}, None)
    assert not selects(i, [], {"team": "b"}, None)
    assert not selects(i, [], {}, ["api"])
    assert not selects(i, [], {}, [])
    assert wildcard_match("a.b[1]*", "a.b[1]-x") and not wildcard_match("a.b", "axb")


def test_human_age() -> None:
    assert [human_age(s) for s in (0, 59, 61, 3600, 3660, 86400, 90000, -5)] == [
        "0s", "59s", "1m1s", "1h", "1h1m", "1d", "1d1h", "0s"]


# -- properties ----------------------------------------------------------------------------------

images_st = st.lists(
    st.tuples(st.sampled_from(["web", "api", ""]), st.sampled_from(["us-east-1", "eu-west-1"]),
              st.integers(0, 400),
              st.lists(st.sampled_from(["s1", "s2", "s3", "s4", "s5", "s6"]), max_size=3),
              st.booleans(), st.booleans(), st.booleans()),
    max_size=25,
)


@given(images_st, st.one_of(st.none(), st.integers(0, 4)), st.one_of(st.none(), st.integers(0, 300)),
       st.booleans(), st.data())
def test_plan_properties(raw: list[tuple[str, str, int, list[str], bool, bool, bool]], keep: int | None,
                         older_days: int | None, include_shared: bool, data: st.DataObject) -> None:
    images = []
    usage = Usage()
    for n, (build, region, age, snaps, in_use, shared, protected) in enumerate(raw):
        im = Image(f"ami-{n}", region, f"n{n}", NOW - timedelta(days=age),
                   {"amibake:build": build} if build else {}, tuple(dict.fromkeys(snaps)),
                   shared_with=("111122223333",) if shared else (), protected=protected)
        images.append(im)
        if in_use:
            usage.use(im.id, "instance i-x (running)")
    for s in data.draw(st.lists(st.sampled_from(["s1", "s2", "s3", "s4", "s5", "s6"]), max_size=2)):
        usage.share(s, "shared with 111122223333")
    selected = [i.id for i in images if data.draw(st.booleans())]
    rules = Rules(keep=keep, older_than=None if older_days is None else older_days * 86400.0,
                  include_shared=include_shared, now=NOW)
    p = plan(images, selected, usage, rules)

    assert sorted(d.image.id for d in p.images) == sorted(selected)
    removed = {d.image.id for d in p.removed_images}
    by_id = {i.id: i for i in images}
    for d in p.images:
        assert d.reasons, d
        im = d.image
        if not d.remove:
            continue
        # never in use or protected; never shared unless asked
        assert im.id not in usage.images and not im.protected and im.state == "available"
        assert include_shared or not (im.shared_with or im.public)
        if keep is not None:
            newer = [o for o in images if o.id in selected and o.region == im.region and o.build == im.build
                     and o.order_key() > im.order_key()]
            assert len(newer) >= keep
        if older_days is not None:
            assert (NOW - im.created).total_seconds() >= older_days * 86400
    if keep != 0:
        for region_build in {(by_id[s].region, by_id[s].build) for s in selected}:
            group = [by_id[s] for s in selected if (by_id[s].region, by_id[s].build) == region_build]
            assert max(group, key=Image.order_key).id not in removed
    staying = {(i.region, s) for i in images if i.id not in removed for s in i.snapshots}
    for s in p.snapshots:
        assert s.image_id in removed
        if s.remove:
            assert (s.region, s.id) not in staying
            assert include_shared or s.id not in usage.snapshots
        else:
            assert (s.region, s.id) in staying or (not include_shared and s.id in usage.snapshots)
    # every snapshot of a removed image is decided exactly once
    assert sorted((s.region, s.id) for s in p.snapshots) == sorted(
        {(by_id[i].region, sn) for i in removed for sn in by_id[i].snapshots})
