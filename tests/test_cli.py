"""The jjj command as an operator runs it: messages and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from credit.errors import InvalidInput
from tests.nodes.builders import ACME
from tests.nodes.test_ingest import GOOD, HEADER


def jjj(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jjj", *args], capture_output=True, text=True, timeout=120)


def test_ingest_exit_codes(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'n.db'}"
    good = tmp_path / "good.csv"
    good.write_text("\n".join([HEADER, *GOOD]) + "\n", encoding="utf-8")
    done = jjj("ingest", "--region", "tianjin", "--db", db, str(good))
    assert done.returncode == 0, done.stderr
    assert "新增 3 (added)" in done.stdout and "[jjj]" in done.stdout

    again = jjj("ingest", "--region", "tianjin", "--db", db, str(good))
    assert again.returncode == 0 and "新增 0 (added)" in again.stdout and "未变 3 (unchanged)" in again.stdout

    partial = tmp_path / "partial.csv"
    partial.write_text(
        f"{HEADER}\n{GOOD[0]}\n坏,{ACME[:-1]}X,D1,罚款,x,2024-03-15,,市场监管委,市场监管,,\n", encoding="utf-8"
    )
    result = jjj("ingest", "--region", "tianjin", "--db", db, str(partial))
    assert result.returncode == 3
    assert "line 3" in result.stderr and "check character" in result.stderr
    assert (tmp_path / "partial.csv.rejects.csv").exists()

    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\xff\xfe\x00garbage")
    result = jjj("ingest", "--region", "tianjin", "--db", db, str(broken))
    assert result.returncode == 2
    assert "not GB18030" in result.stderr

    dry = jjj("ingest", "--region", "tianjin", "--db", db, "--dry-run", str(partial))
    assert dry.returncode == 3 and "dry run" in dry.stdout
    assert "Traceback" not in result.stderr


def test_bad_arguments_are_refused_with_a_message(tmp_path: Path) -> None:
    result = jjj("ingest", "--region", "shanghai", "--db", "sqlite:///x.db", "f.csv")
    assert result.returncode == 2 and "unknown region" in result.stderr
    result = jjj("seed", "--region", "hebei", "--db", "mysql://nobody@localhost/x", "--subjects", "10")
    assert result.returncode == 2 and "unsupported database" in result.stderr
    result = jjj("seed", "--region", "hebei", "--subjects", "10")
    assert result.returncode == 2 and "exactly one of --db or --csv" in result.stderr
    result = jjj(
        "node",
        "--region",
        "hebei",
        "--db",
        f"sqlite:///{tmp_path}/n.db",
        "--listen",
        "256.1.1.1:99999",
        "--allow-unasserted",
    )
    assert result.returncode == 1 and "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr


def test_seed_is_deterministic_and_reingestable(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    for path in (first, second):
        done = jjj("seed", "--region", "hebei", "--subjects", "2000", "--today", "2025-06-16", "--csv", str(path))
        assert done.returncode == 0, done.stderr
    assert first.read_bytes() == second.read_bytes()
    db = f"sqlite:///{tmp_path / 'n.db'}"
    loaded = jjj("ingest", "--region", "hebei", "--db", db, str(first))
    assert loaded.returncode == 0, loaded.stderr + loaded.stdout
    seeded = jjj("seed", "--region", "hebei", "--subjects", "2000", "--today", "2025-06-16", "--db", db)
    assert seeded.returncode == 0
    assert "0 records added, 0 new versions" in seeded.stdout


def test_accounts_command(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gateway.db'}"

    def accounts(*args: str, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jjj", "accounts", *args, "--db", db],
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = accounts("acme", "--role", "enterprise", "--subject", "91350100M000100Y43", password="a-long-enough-secret")
    assert done.returncode == 0 and "saved" in done.stdout
    assert accounts("acme", "--role", "enterprise", password="a-long-enough-secret").returncode == 2
    assert accounts("acme", "--role", "boss", password="a-long-enough-secret").returncode == 2
    short = accounts("acme", "--role", "admin", password="short")
    assert short.returncode == 2 and "12 characters" in short.stderr
    # The portal's password rule: no username inside.
    named = accounts("acme", "--role", "admin", password="acme-is-my-password")
    assert named.returncode == 2 and "username" in named.stderr
    person = accounts(
        "li",
        "--role",
        "person",
        "--subject",
        "11010519491231002X",
        "--full-name",
        "李建华",
        password="a-long-enough-secret",
    )
    assert person.returncode == 0, person.stderr
    assert accounts("acme3", "--role", "admin", "--full-name", "某人", password="a-long-enough-secret").returncode == 2
    scoped = accounts("officer", "--role", "agency", "--region", "天津", password="a-long-enough-secret")
    assert scoped.returncode == 0, scoped.stderr
    wrong = accounts("acme2", "--role", "admin", "--region", "tianjin", password="a-long-enough-secret")
    assert wrong.returncode == 2 and "region" in wrong.stderr
    assert accounts("officer", "--role", "agency", "--region", "mars", password="a-long-enough-secret").returncode == 2
    # A bank's account names its bank, by credit code; a bank new to the gateway, with its name.
    bank = "91120000MA06QX8B3J"
    nameless = accounts("teller", "--role", "third_party", password="a-long-enough-secret")
    assert nameless.returncode == 2 and "--org" in nameless.stderr
    unnamed = accounts("teller", "--role", "third_party", "--org", bank, password="a-long-enough-secret")
    assert unnamed.returncode == 2 and "--org-name" in unnamed.stderr
    typo = accounts("teller", "--role", "third_party", "--org", bank[:-1] + "X", password="a-long-enough-secret")
    assert typo.returncode == 2
    named = accounts(
        "teller", "--role", "third_party", "--org", bank, "--org-name", "示范银行", password="a-long-enough-secret"
    )
    assert named.returncode == 0, named.stderr
    second = accounts("manager", "--role", "third_party", "--org", bank, password="a-long-enough-secret")
    assert second.returncode == 0, second.stderr  # the bank is known now

    from gateway.registry import Registry

    registry = Registry.open(db)
    try:
        import asyncio

        officer = asyncio.run(registry.account("officer"))
        assert officer is not None and officer.region == "tianjin"
        account = asyncio.run(registry.account("acme"))
        manager = asyncio.run(registry.account("manager"))
        organisation = asyncio.run(registry.organisation(bank))
        li = asyncio.run(registry.account("li"))
    finally:
        registry.close()
    assert manager is not None and manager.org_code == bank
    assert organisation is not None and organisation.name == "示范银行"
    assert account is not None and account.subject_id == "91350100M000100Y43"
    assert account.org_code == "91350100M000100Y43"  # an enterprise's account belongs to it
    assert account.password_hash.startswith("$argon2id$")
    assert li is not None and li.full_name == "李建华"


def test_objections_desk_at_the_node(tmp_path: Path) -> None:
    import asyncio

    from credit.cases import CaseKind
    from credit.regions import Region
    from infra.db import sync_engine
    from nodes.objections import ObjectionDesk
    from tests.conftest import load
    from tests.nodes.builders import penalty

    db = f"sqlite:///{tmp_path / 'node.db'}"
    record = penalty(decision_no="津罚-CLI")
    load(db, [record])
    engine = sync_engine(db)
    desk = ObjectionDesk(engine, region=Region.TIANJIN)
    pdf = b"%PDF-1.4\n%%EOF\n"
    from credit.cases import check_attachment

    case = asyncio.run(
        desk.file(
            subject_id=ACME,
            record_id=record.record_id,
            kind=CaseKind.OBJECTION,
            reason="金额有误",
            filed_by="acme",
            attachment=check_attachment("证明.pdf", pdf),
        )
    )
    desk.close()
    engine.dispose()
    base = ("objections", "--region", "tianjin", "--db", db)

    listed = jjj(*base, "list", "--state", "open")
    assert listed.returncode == 0, listed.stderr
    assert case.number in listed.stdout and "处理中" in listed.stdout
    saved = tmp_path / "out.pdf"
    shown = jjj(*base, "show", case.number, "--save-attachment", str(saved))
    assert shown.returncode == 0 and "金额有误" in shown.stdout and saved.read_bytes() == pdf

    # Usage errors: exit 2 with a message, nothing decided.
    missing = jjj(*base, "resolve", case.number, "--as", "corrected", "--by", "officer")
    assert missing.returncode == 2 and "--note" in missing.stderr
    bad = jjj(*base, "resolve", "TJ-QQ-1", "--as", "upheld", "--note", "x", "--by", "officer")
    assert bad.returncode == 2 and "办件编号" in bad.stderr
    empty = jjj(*base, "resolve", case.number, "--as", "corrected", "--note", "更正", "--by", "officer")
    assert empty.returncode == 2 and "correction" in empty.stderr

    done = jjj(
        *base, "resolve", case.number, "--as", "corrected", "--content", "罚款人民币500元",
        "--note", "金额更正", "--by", "officer-tj",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "stored as version 2" in done.stdout and "officer-tj" in done.stdout
    again = jjj(*base, "resolve", case.number, "--as", "upheld", "--note", "x", "--by", "officer-tj")
    assert again.returncode == 1 and "已办结" in again.stderr

    repaired = jjj(*base, "repair", record.record_id, "--note", "津信修〔2025〕3号", "--by", "officer-tj")
    assert repaired.returncode == 0 and "stored as version 3" in repaired.stdout
    assert "TJ-XF-" in jjj(*base, "list", "--kind", "credit_repair").stdout

    # Both decisions are in the node's audit log, whose chain is intact.
    audit = jjj("audit", "verify", "--db", db)
    assert audit.returncode == 0 and "2 entries" in audit.stdout, audit.stdout + audit.stderr


def test_the_seeded_register_loads_through_ingest_and_seeding_agrees_with_it(tmp_path: Path) -> None:
    records, register = tmp_path / "records.csv", tmp_path / "register.csv"
    args = ("seed", "--region", "tianjin", "--subjects", "200", "--today", "2025-06-16")
    done = jjj(*args, "--csv", str(records), "--register-csv", str(register))
    assert done.returncode == 0, done.stderr
    db = f"sqlite:///{tmp_path / 'n.db'}"
    loaded = jjj("ingest", "--region", "tianjin", "--db", db, str(register))
    assert loaded.returncode == 0, loaded.stderr + loaded.stdout
    assert "市场主体登记信息 [market-entity-register]" in loaded.stdout
    # 180 enterprises among 200 subjects, four of them in no register, and the demo company.
    assert "新增 177 (added)" in loaded.stdout
    seeded = jjj(*args, "--db", db)
    assert seeded.returncode == 0, seeded.stderr
    assert "0 register entries stored, 177 unchanged" in seeded.stdout


def test_services_run_on_uvloop_unless_asked_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import uvloop

    from jjj import loop

    async def running() -> type:
        return type(asyncio.get_running_loop())

    monkeypatch.delenv("JJJ_EVENT_LOOP", raising=False)
    assert issubclass(loop.run(running()), uvloop.Loop)
    monkeypatch.setenv("JJJ_EVENT_LOOP", "asyncio")
    chosen = loop.run(running())
    assert not issubclass(chosen, uvloop.Loop) and issubclass(chosen, asyncio.BaseEventLoop)
    monkeypatch.setenv("JJJ_EVENT_LOOP", "fibers")
    main = running()
    with pytest.raises(InvalidInput, match="JJJ_EVENT_LOOP"):
        loop.run(main)
    assert main.cr_frame is None  # closed, not left unawaited


def test_an_unknown_event_loop_is_refused_with_a_message(tmp_path: Path) -> None:
    env = {**os.environ, "JJJ_EVENT_LOOP": "fibers"}
    argv = ["node", "--region", "tianjin", "--db", f"sqlite:///{tmp_path / 'n.db'}", "--listen", "127.0.0.1:0"]
    done = subprocess.run([sys.executable, "-m", "jjj", *argv], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2
    assert "JJJ_EVENT_LOOP: must be one of uvloop, asyncio, not 'fibers'" in done.stderr
