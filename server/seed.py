"""Demo data for ``make run``: sites, resources, a demo team with users, fake patients."""

from __future__ import annotations

import random
import uuid
from typing import Any

from sqlalchemy import Connection, func, select

from server import audit, auth, db, records
from server.db import Database
from server.passwords import hash_password
from server.records import Stored
from server.settings import Settings
from sync import hlc, schema

CREDENTIALS = [
    ("demo", "demo-liaison-2026", "liaison"),
    ("super", "demo-super-2026", "supervisor"),
    ("admin", "demo-admin-2026", "admin"),
]
FIRST = ("Ada", "Bo", "Cy", "Dot", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo")
LAST = ("Example", "Sample", "Placeholder")
SITES = [
    ("Riverside Family Practice (demo)", "physician_office"),
    ("Lakeview General Hospital (demo)", "hospital"),
    ("Northside Home Care (demo)", "home_care_agency"),
    ("Maple Community Centre (demo)", "community_org"),
]
RESOURCES = [
    ("Demo Food Bank", ["food"]),
    ("Demo Meals on Wheels", ["food", "social_isolation"]),
    ("Demo Housing Help Desk", ["housing", "financial"]),
    ("Demo Ride Share for Seniors", ["transport"]),
    ("Demo Utility Assistance Fund", ["utilities", "financial"]),
    ("Demo Caregiver Support Circle", ["caregiver_support"]),
    ("Demo Pharmacy Blister Packs", ["medication_management"]),
    ("Demo Counselling Line", ["mental_health"]),
    ("Demo Elder Safety Line", ["safety"]),
    ("Demo Friendly Visitors", ["social_isolation"]),
]


def is_empty(database: Database) -> bool:
    """True when no user exists yet."""
    with database.read() as conn:
        return not conn.execute(select(func.count()).select_from(db.users)).scalar()


def seed_demo(database: Database, settings: Settings, now: float) -> list[tuple[str, str, str]]:
    """Create the demo organization; returns the (username, password, role) created."""
    hashes = {name: hash_password(pw, settings) for name, pw, _ in CREDENTIALS}
    rng = random.Random(2026)
    with database.write() as conn:
        team_id = auth.create_team(conn, "Demo team", now)
        for name, _, role in CREDENTIALS:
            teams = [team_id] if role != "admin" else []
            auth.create_user(conn, name, hashes[name], role, teams, now)
        writer = _Writer(conn, now)
        sites = [writer.put("site", None, name=n, kind=k, phone="555-0100") for n, k in SITES]
        resources = [
            writer.put(
                "resource", None, name=n, categories=c, phone="555-0199", hours="Mon-Fri 9-5"
            )
            for n, c in RESOURCES
        ]
        for index in range(30):
            _patient(writer, rng, index, team_id, sites, resources)
        writer.revs.finish()
        audit.append(conn, at=now, actor="cli", action="seed.demo", targets=[team_id])
    return CREDENTIALS


def _patient(
    writer: _Writer,
    rng: random.Random,
    index: int,
    team_id: str,
    sites: list[str],
    resources: list[str],
) -> None:
    name = f"{FIRST[index % 10]} {LAST[index // 10]} (demo)"
    pid = writer.put(
        "patient",
        team_id,
        name=name,
        team_id=team_id,
        birth_date=f"19{rng.randint(30, 60)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        phone=f"555-01{index:02d}",
        language=rng.choice(["English", "French", "Spanish"]),
        site_id=rng.choice(sites),
        consent_status="verbal",
        status="active",
    )
    if index % 2 == 0:
        needs = rng.sample(schema.NEED_DOMAINS, 2)
        writer.put(
            "visit",
            team_id,
            patient_id=pid,
            setting=rng.choice(schema.SETTINGS),
            started_at=f"2026-05-{index % 28 + 1:02d}T10:00:00",
            source="physician_office",
            needs=needs,
            summary="Demo visit summary.",
            triage=rng.choice(schema.TRIAGE),
            status="final" if index % 4 == 0 else "draft",
        )
        writer.put(
            "referral",
            team_id,
            patient_id=pid,
            resource_id=rng.choice(resources),
            need=needs[0],
            urgency="routine",
            status="sent",
        )
    if index % 3 == 0:
        writer.put(
            "task",
            team_id,
            patient_id=pid,
            title="Call back about referral",
            due_date="2026-06-01",
            done=False,
        )


class _Writer:
    """Writes new records straight to the store with server clocks and fresh revs."""

    def __init__(self, conn: Connection, now: float) -> None:
        self.conn = conn
        self.now = now
        self.revs = records.Revs(conn)
        self.clock = hlc.Clock("server", wall=lambda: int(now * 1000))

    def put(self, type_name: str, scope_team: str | None, **fields: Any) -> str:
        problems = schema.validate(type_name, fields)
        assert not problems, problems  # demo data is ours: a problem is a bug
        record_id = str(uuid.uuid4())
        rev = self.revs.next()
        stamp = self.clock.now()
        rec = Stored(
            record_id,
            type_name,
            scope_team,
            schema.patient_of(type_name, record_id, fields),
            dict(fields),
            {k: stamp for k in fields},
            {k: rev for k in fields},
            rev,
        )
        records.save(self.conn, rec, new=True, author="seed", now=self.now)
        return record_id
