"""The assessment screen, headless: render, autosave, live scores, triage, finalize, addenda."""

import asyncio

import flet as ft

from app.casework import Casework
from app.views import assessment
from tests.app.views_support import (
    FakeNav,
    absent,
    find,
    keys,
    patient,
    resource,
    saves_heard,
    texts,
)


def visits(app):
    return app.store.list("visit")


def test_new_assessment_renders_and_saves_nothing_until_a_change(app):
    pid = patient(app)
    nav = FakeNav(f"/assess/{pid}")
    view = assessment.build(app, nav, patient_id=pid)
    assert view.route == f"/assess/{pid}"
    for key in (
        "save-status",
        "started-at",
        "setting",
        "source",
        "need-food",
        "q-food_worry",
        "scores",
        "summary",
        "triage",
        "proposals",
        "consent",
        "finalize",
    ):
        assert key in keys(view), key
    assert find(view, "save-status").value == "Not saved yet"
    assert find(view, "score-domains").value == "Needs found: none yet"
    assert visits(app) == []
    # the first change creates the draft (no event loop here: the debouncer saves at once)
    summary = find(view, "summary")
    summary.value = "Lives alone"
    saves = saves_heard(app)
    summary.on_change(None)
    (visit,) = visits(app)
    assert visit["fields"]["summary"] == "Lives alone"
    assert visit["fields"]["status"] == "draft" and visit["fields"]["patient_id"] == pid
    assert find(view, "save-status").value.startswith("Draft saved")
    assert saves == ["saved"]  # the store told the app (pending badge, background sync)
    # a rebuild (or coming back) keeps editing the same draft
    view = assessment.build(app, nav, patient_id=pid)
    find(view, "need-housing").selected = True
    find(view, "need-housing").on_select(None)
    (visit,) = visits(app)
    assert visit["fields"]["needs"] == ["housing"]


def test_unknown_patient_or_visit(app):
    nav = FakeNav()
    view = assessment.build(app, nav, patient_id="00000000-0000-4000-8000-000000000000")
    assert "visit-missing" in keys(view)
    view = assessment.build(app, nav, visit_id="00000000-0000-4000-8000-000000000000")
    assert "visit-missing" in keys(view)


def test_autosave_is_debounced_inside_the_event_loop(app):
    pid = patient(app)
    nav = FakeNav()

    async def typing():
        view = assessment.build(app, nav, patient_id=pid)
        summary = find(view, "summary")
        for text in ("L", "Li", "Liv", "Lives alone"):
            summary.value = text
            summary.on_change(None)
        assert visits(app) == []  # not one write per keystroke
        summary.on_blur(None)  # leaving the field writes at once
        (visit,) = visits(app)
        assert visit["fields"]["summary"] == "Lives alone"
        pending = app.store.pending_count()
        find(view, "need-food").selected = True
        find(view, "need-food").on_select(None)
        assert app.store.pending_count() == pending
        await asyncio.sleep(0)  # the timer has not fired yet (1 s)
        assert visits(app)[0]["fields"].get("needs") is None
        edit = app.ui[f"visit:{visit['id']}"]
        edit.debouncer.flush()
        assert visits(app)[0]["fields"]["needs"] == ["food"]

    asyncio.run(typing())


def test_screen_scores_live(app):
    pid = patient(app)
    view = assessment.build(app, FakeNav(), patient_id=pid)
    for qid, value in (
        ("phq2_interest", "2"),
        ("phq2_down", "1"),
        ("living_situation", "unstable"),
        ("steadi_fallen", "yes"),
    ):
        group = find(view, f"q-{qid}")
        group.value = value
        group.on_change(None)
    text = texts(view)
    assert "PHQ-2: 3 (positive, positive at 3+)" in text
    assert "Urgent: Housing" in text and "Falls: at risk" in text
    assert "Needs found: Housing, Mental health" in text
    assert find(view, "needs-from-screen").value.startswith("The screen also found: Housing")
    (visit,) = visits(app)
    assert visit["fields"]["screening"] == {
        "phq2_interest": 2,
        "phq2_down": 1,
        "living_situation": "unstable",
        "steadi_fallen": "yes",
    }
    assert visit["fields"]["scores"]["phq2"] == 3
    group = find(view, "q-phq2_down")
    group.value = None  # tapping the chosen answer again clears it
    group.on_change(None)
    assert "phq2_down" not in visits(app)[0]["fields"]["screening"]
    assert "PHQ-2: 2 (not finished" in texts(view)


def choose(view, key, value):
    control = find(view, key)
    if isinstance(control, ft.Chip):
        control.selected = value
        control.on_select(None)
        return
    control.value = value
    if hasattr(control, "on_select") and control.on_select:
        control.on_select(None)
    else:
        control.on_change(None)


def test_triage_proposes_next_steps_accepted_with_one_tap(app):
    pid = patient(app)
    resource(app, "Food bank", "food")
    nav = FakeNav()
    view = assessment.build(app, nav, patient_id=pid)
    assert "proposals-none" in keys(view)
    choose(view, "need-food", True)
    choose(view, "triage", "short_term_contact")
    assert "Refer to Food bank (food)" in texts(view)
    assert {"accept-0", "accept-1", "accept-2", "accept-3"} <= keys(view)
    find(view, "accept-0").on_click(None)
    (referral,) = app.store.list("referral")
    assert referral["fields"]["to_name"] == "Food bank"
    assert referral["fields"]["visit_id"] == visits(app)[0]["id"]
    assert nav.toasts[-1] == "Added: Refer to Food bank (food)" and nav.refreshed == 1
    view = assessment.build(app, nav, patient_id=pid)  # what nav.refresh does
    assert "accepted-0" in keys(view) and "accept-0" not in keys(view)
    find(view, "accept-1").on_click(None)
    assert len(app.store.list("task")) == 1


def test_case_management_hand_off_carries_the_latest_summary(app):
    pid = patient(app, "Ada Demo")
    nav = FakeNav()
    view = assessment.build(app, nav, patient_id=pid)
    choose(view, "triage", "intensive_case_management")
    summary = find(view, "summary")
    summary.value = "Eviction notice, lives alone."
    summary.on_change(None)
    find(view, "accept-0").on_click(None)
    (referral,) = app.store.list("referral")
    assert "Eviction notice" in referral["fields"]["notes"]
    assert "Ada Demo" in referral["fields"]["notes"]


def test_finalize_names_what_is_missing_then_makes_the_visit_read_only(app):
    pid = patient(app)
    nav = FakeNav()
    view = assessment.build(app, nav, patient_id=pid)
    find(view, "finalize").on_click(None)
    assert nav.refreshed == 1 and nav.went == []
    view = assessment.build(app, nav, patient_id=pid)
    banner = texts(find(view, "finalize-banner"))
    assert "Setting is required to finalize" in banner
    assert "Triage decision is required to finalize" in banner
    assert "Consent must be confirmed to finalize" in banner
    assert find(view, "triage-error").visible and find(view, "setting-error").visible
    choose(view, "setting", "home")
    choose(view, "triage", "information_referral")
    choose(view, "consent", True)
    find(view, "finalize").on_click(None)
    (visit,) = visits(app)
    assert visit["fields"]["status"] == "final"
    assert nav.went == [f"/visit/{visit['id']}"] and "Visit finalized" in nav.toasts
    # the final visit is read-only: no form, an addendum instead
    view = assessment.build(app, nav, visit_id=visit["id"])
    assert "final-banner" in keys(view)
    assert not {"finalize", "summary", "triage"} & keys(view)
    assert find(view, "fact-setting").value == "Home visit"
    assert "addenda-none" in keys(view)
    add = find(view, "add-addendum")
    add.on_click(None)
    assert find(view, "addendum-text").error == "Write the correction first"
    text = find(view, "addendum-text")
    text.value = "Daughter visits on Sundays."
    text.on_change(None)
    add.on_click(None)
    view = assessment.build(app, nav, visit_id=visit["id"])
    assert "Daughter visits on Sundays." in texts(find(view, "addendum-0"))
    (addendum,) = app.store.list("addendum")
    assert addendum["fields"]["visit_id"] == visit["id"]
    # /assess/<patient> now starts a fresh assessment
    view = assessment.build(app, nav, patient_id=pid)
    assert find(view, "save-status").value == "Not saved yet"


def test_a_draft_opened_by_id_is_editable_and_bad_time_is_refused(app):
    pid = patient(app)
    work = Casework(app)
    draft = work.save_visit(
        None, {"patient_id": pid, "started_at": "2026-11-23T09:00:00", "summary": "Earlier"}
    )
    nav = FakeNav()
    view = assessment.build(app, nav, visit_id=draft["id"])
    assert find(view, "summary").value == "Earlier"
    assert find(view, "started-at").value == "2026-11-23 09:00"
    started = find(view, "started-at")
    started.value = "yesterday"
    started.on_change(None)
    assert started.error and visits(app)[0]["fields"]["started_at"] == "2026-11-23T09:00:00"
    started.value = "2026-11-22 17:45"
    started.on_change(None)
    assert started.error is None
    assert visits(app)[0]["fields"]["started_at"] == "2026-11-22T17:45:00"
    started.value = "2026-11-21"
    started.on_change(None)
    assert visits(app)[0]["fields"]["started_at"] == "2026-11-21T00:00:00"


def test_full_final_visit_renders(app):
    pid = patient(app)
    work = Casework(app)
    fields = {
        "patient_id": pid,
        "setting": "phone",
        "started_at": "2026-11-23T09:00:00",
        "source": "hospital",
        "needs": ["food"],
        "summary": "Call done",
        "screening": {"phq2_interest": 3, "safety_hurt": 5},
        "consent_confirmed": True,
        "triage": "intensive_case_management",
    }
    draft = work.save_visit(None, fields)
    final = work.finalize_visit(draft["id"], draft["fields"])
    view = assessment.build(app, FakeNav(), visit_id=final["id"])
    text = texts(view)
    for part in (
        "Phone call",
        "Hospital",
        "Food, Mental health",
        "Intensive case management",
        "Call done",
        "PHQ-2: 3",
        "Nearly every day",
        "Frequently",
        "Refer to Intensive community case management with hand-off summary",
    ):
        assert part in text, part


def test_todays_draft_is_resumed_after_a_lock(app):
    pid = patient(app)
    nav = FakeNav()
    view = assessment.build(app, nav, patient_id=pid)
    choose(view, "setting", "phone")
    assert nav.updates >= 1  # a save inside a handler needs an explicit update
    app.ui.clear()  # what locking does to screen state
    view = assessment.build(app, nav, patient_id=pid)
    assert find(view, "setting").value == "phone"
    choose(view, "triage", "short_term_contact")
    (visit,) = visits(app)
    assert visit["fields"]["setting"] == "phone"
    # a draft from an earlier day is left alone: a new assessment starts
    Casework(app).save_visit(visit["id"], {**visit["fields"], "started_at": "2026-11-20T09:00:00"})
    app.ui.clear()
    view = assessment.build(app, nav, patient_id=pid)
    assert find(view, "setting").value is None


COLLEAGUE_STAMP = f"{1_790_000_000_000:015d}-00000-colleague-phone"


def colleagues_draft(app, pid, summary="Seen at home by Sam"):
    """A draft visit another device started, as a pull brings it."""
    import uuid

    fields = {
        "patient_id": pid,
        "setting": "home",
        "started_at": "2026-11-23T08:00:00",
        "summary": summary,
        "status": "draft",
    }
    record = {
        "id": str(uuid.uuid4()),
        "type": "visit",
        "fields": fields,
        "clock": dict.fromkeys(fields, COLLEAGUE_STAMP),
        "rev": 7,
        "deleted": False,
    }
    app.store.apply_pull([record], [], 7)
    return record["id"]


def signed_in_as(app, role):
    app.store.set_meta("user", {"username": "me", "role": role, "teams": []})


EDIT_KEYS = (
    "finalize",
    "summary",
    "started-at",
    "setting",
    "triage",
    "consent",
    "visit-photos-add",
    "discard-draft",
)


def test_a_colleagues_draft_is_read_only(app):
    pid = patient(app)
    signed_in_as(app, "liaison")
    vid = colleagues_draft(app, pid)
    view = assessment.build(app, FakeNav(), visit_id=vid)
    assert find(view, "colleague-draft-banner")
    assert "Draft by a colleague — only its author can change it." in texts(view)
    assert "Seen at home by Sam" in texts(find(view, "fact-summary"))
    for key in EDIT_KEYS:
        assert key not in keys(view), key
    assert [m["record_id"] for m in app.store.outbox()] == [pid]  # nothing written


def test_a_supervisor_can_discard_a_colleagues_draft(app):
    pid = patient(app)
    signed_in_as(app, "supervisor")
    vid = colleagues_draft(app, pid)
    nav = FakeNav(f"/visit/{vid}")
    view = assessment.build(app, nav, visit_id=vid)
    for key in EDIT_KEYS[:-1]:
        assert key not in keys(view), key
    find(view, "discard-draft").on_click(None)
    find(nav.dialogs[-1], "discard-draft-confirm").on_click(None)
    assert app.store.get(vid) is None
    (mutation,) = [m for m in app.store.outbox() if m["record_id"] == vid]
    assert mutation["op"] == "delete"
    assert nav.went[-1] == f"/patient/{pid}" and nav.toasts[-1] == "Draft discarded"


def test_a_new_assessment_never_resumes_a_colleagues_draft(app):
    pid = patient(app)
    vid = colleagues_draft(app, pid)
    view = assessment.build(app, FakeNav(), patient_id=pid)
    assert find(view, "save-status").value == "Not saved yet"
    summary = find(view, "summary")
    assert summary.value == ""
    summary.value = "My own visit"
    summary.on_change(None)
    assert app.store.get(vid)["fields"]["summary"] == "Seen at home by Sam"
    assert len(visits(app)) == 2


def test_the_author_discards_an_own_draft_also_after_signing_in_again(app):
    pid = patient(app)
    signed_in_as(app, "liaison")
    draft = Casework(app).save_visit(
        None, {"patient_id": pid, "summary": "Mine", "started_at": "2026-11-23T09:00:00"}
    )
    app.store.set_meta("device_id", "a-new-device-id")  # signing in again: the node stays
    nav = FakeNav(f"/visit/{draft['id']}")
    view = assessment.build(app, nav, visit_id=draft["id"])
    assert "colleague-draft-banner" not in keys(view)
    assert find(view, "summary").value == "Mine"
    find(view, "discard-draft").on_click(None)
    find(nav.dialogs[-1], "discard-draft-cancel").on_click(None)
    assert app.store.get(draft["id"]) is not None
    find(view, "discard-draft").on_click(None)
    find(nav.dialogs[-1], "discard-draft-confirm").on_click(None)
    assert app.store.get(draft["id"]) is None
    assert nav.went[-1] == f"/patient/{pid}"
    assert f"visit:{draft['id']}" not in app.ui


def test_a_new_assessment_has_nothing_to_discard_until_saved(app):
    pid = patient(app)
    view = assessment.build(app, FakeNav(), patient_id=pid)
    assert "discard-draft" not in keys(view)


# -- changed on another device while the form is open (app/forms.py) --------------------


def _pulled(app, visit_id, **fields):
    """A sync brings ``fields`` of the visit, written later on another device."""
    record = app.store.get(visit_id)
    stamp = f"{9_999_999_999_999:015d}-00000-other-device"
    clock = {**record["clock"], **dict.fromkeys(fields, stamp)}
    incoming = {**record, "fields": {**record["fields"], **fields}, "clock": clock, "rev": 7}
    app.store.apply_pull([incoming], [], 7)


def _type_summary(view, text):
    summary = find(view, "summary")
    summary.value = text
    summary.on_change(None)


def _draft_changed_elsewhere(app):
    """A draft with a summary; then a sync brings another summary; the liaison types on."""
    pid = patient(app)
    nav = FakeNav(f"/assess/{pid}")
    view = assessment.build(app, nav, patient_id=pid)
    _type_summary(view, "Lives alone")
    (visit,) = visits(app)
    _pulled(app, visit["id"], summary="Lives with her daughter")
    _type_summary(view, "Lives alone, a cat")
    return nav, view, visit["id"]


def test_a_summary_changed_on_another_device_is_not_overwritten_silently(app):
    nav, view, visit_id = _draft_changed_elsewhere(app)
    assert app.store.get(visit_id)["fields"]["summary"] == "Lives with her daughter"
    dialog = nav.dialogs[-1]
    assert find(dialog, "stale-text").value == (
        "Summary was changed on another device to 'Lives with her daughter' while you were editing."
    )
    assert find(view, "save-status").value.startswith("Not saved")
    assert app.ui[f"visit:{visit_id}"].unsaved  # leaving asks before dropping it


def test_keep_mine_saves_over_the_other_devices_value(app):
    nav, view, visit_id = _draft_changed_elsewhere(app)
    find(nav.dialogs[-1], "stale-mine").on_click(None)
    assert nav.dialogs == []
    assert app.store.get(visit_id)["fields"]["summary"] == "Lives alone, a cat"
    assert find(view, "save-status").value.startswith("Draft saved")
    _type_summary(view, "Lives alone, a cat and a dog")  # no second question
    assert nav.dialogs == []
    assert app.store.get(visit_id)["fields"]["summary"] == "Lives alone, a cat and a dog"


def test_use_theirs_reloads_the_form(app):
    nav, view, visit_id = _draft_changed_elsewhere(app)
    find(nav.dialogs[-1], "stale-theirs").on_click(None)
    assert nav.dialogs == [] and nav.refreshed
    assert app.store.get(visit_id)["fields"]["summary"] == "Lives with her daughter"
    view = assessment.build(app, nav, visit_id=visit_id)
    assert find(view, "summary").value == "Lives with her daughter"
    _type_summary(view, "Lives with her daughter and a cat")
    assert nav.dialogs == []
    assert app.store.get(visit_id)["fields"]["summary"] == "Lives with her daughter and a cat"


def test_a_field_changed_elsewhere_that_i_did_not_touch_is_kept_without_asking(app):
    pid = patient(app)
    nav = FakeNav(f"/assess/{pid}")
    view = assessment.build(app, nav, patient_id=pid)
    _type_summary(view, "Lives alone")
    (visit,) = visits(app)
    _pulled(app, visit["id"], consent_confirmed=True)
    _type_summary(view, "Lives alone, a cat")
    assert nav.dialogs == []
    fields = app.store.get(visit["id"])["fields"]
    assert fields["summary"] == "Lives alone, a cat" and fields["consent_confirmed"] is True


def test_finalize_waits_for_the_answer_about_a_changed_field(app):
    nav, view, visit_id = _draft_changed_elsewhere(app)
    nav.dialogs.clear()  # the question went away unanswered, say
    find(view, "finalize").on_click(None)
    assert "stale-text" in keys(nav.dialogs[-1])  # asked again
    assert app.store.get(visit_id)["fields"]["summary"] == "Lives with her daughter"
    assert app.store.get(visit_id)["fields"]["status"] == "draft"


def test_screening_counters_follow_the_answers(app):
    view = assessment.build(app, FakeNav(), patient_id=patient(app))
    counter = find(view, "instrument-phq2-summary")
    assert counter.value == "0 of 2 answered"
    group = find(view, "q-phq2_interest")
    group.value = "3"
    group.on_change(None)
    assert counter.value == "1 of 2 answered · Score 3 · positive"
    group.value = None  # cleared again
    group.on_change(None)
    assert counter.value == "0 of 2 answered"


def _final_with_proposals(app):
    pid = patient(app)
    resource(app, "Food bank", "food")
    work = Casework(app)
    fields = {
        "patient_id": pid,
        "setting": "home",
        "started_at": "2026-11-23T09:00:00",
        "needs": ["food", "transport"],
        "consent_confirmed": True,
        "triage": "short_term_contact",
    }
    draft = work.save_visit(None, fields)
    return work.finalize_visit(draft["id"], draft["fields"])


def test_adding_a_next_step_on_a_final_visit_keeps_the_screen(app):
    final = _final_with_proposals(app)
    nav = FakeNav()
    view = assessment.build(app, nav, visit_id=final["id"])
    find(view, "accept-0").on_click(None)
    assert nav.refreshed == 0 and len(app.store.list("referral")) == 1
    assert "accepted-0" in keys(view) and absent(view, "accept-0")  # changed in place


def test_add_all_adds_every_next_step_not_added_yet(app):
    final = _final_with_proposals(app)
    nav = FakeNav()
    view = assessment.build(app, nav, visit_id=final["id"])
    proposed = {k for k in keys(view) if k.startswith("accept-") and k != "accept-all"}
    assert len(proposed) >= 3 and find(view, "accept-all").visible
    find(view, "accept-0").on_click(None)
    find(view, "accept-all").on_click(None)
    assert nav.refreshed == 0 and not find(view, "accept-all").visible
    assert {k.replace("accept-", "accepted-") for k in proposed} <= keys(view)
    added = len(app.store.list("referral")) + len(app.store.list("task"))
    assert added == len(proposed)
    view = assessment.build(app, nav, visit_id=final["id"])  # opened again: all added
    assert not find(view, "accept-all").visible
