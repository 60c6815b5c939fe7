"""The ``jjj`` command line. The only place (with the settings classes) that reads the
environment; every subcommand turns errors into a message and a non-zero exit.

Exit codes: 0 success; 1 failure; 2 bad usage or input; 3 ingest loaded the good rows
but rejected some (see the rejects report).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from credit.errors import CreditError, InvalidInput
from credit.regions import Region
from jjj import loop

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _region(value: str) -> Region:
    try:
        return Region.parse(value)
    except CreditError as exc:
        raise argparse.ArgumentTypeError(exc.detail) from None


def _cmd_node(args: argparse.Namespace) -> int:
    from nodes.server import serve
    from nodes.settings import NodeSettings

    settings = NodeSettings.from_env(
        region=args.region,
        db_url=args.db,
        listen=args.listen,
        metrics_listen=args.metrics_listen,
        default_profile=args.profile,
        pilot_codes_file=args.pilot_codes,
        gateway_jwks=args.gateway_jwks,
        allow_unasserted=True if args.allow_unasserted else None,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_ca=args.tls_ca,
        peers=args.peers,
    )
    loop.run(serve(settings))
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from credit.catalogue import catalogue
    from infra.db import sync_engine
    from nodes.db import migrate
    from nodes.ingest import RowRules, file_options, ingest_file
    from nodes.settings import NodeSettings

    settings = NodeSettings.from_env(region=args.region, db_url=args.db, pilot_codes_file=args.pilot_codes)
    path = Path(args.file)
    options = file_options(args.domain or "", args.scope or "")
    migrate(settings.db_url)
    engine = sync_engine(settings.db_url)
    started = time.perf_counter()
    try:
        rules = RowRules(
            catalogue(settings.region), today=date.today(), pilot_codes=settings.pilot_codes(), options=options
        )
        report = ingest_file(
            path,
            engine=engine,
            rules=rules,
            encoding=args.encoding or "",
            sheet=args.sheet or "",
            dry_run=args.dry_run,
        )
    finally:
        engine.dispose()
    elapsed = time.perf_counter() - started
    for line in report.summary():
        print(line)
    print(f"  {elapsed:.2f}s")
    if report.rejects:
        rejects_path = Path(args.rejects) if args.rejects else path.with_name(path.name + ".rejects.csv")
        report.write_rejects(rejects_path)
        for reject in report.rejects[:5]:
            print(f"  line {reject.line}: {reject.reason}", file=sys.stderr)
        if len(report.rejects) > 5:
            print(f"  … {len(report.rejects) - 5} more", file=sys.stderr)
        print(f"rejected rows with their line and reason: {rejects_path}", file=sys.stderr)
        return EXIT_PARTIAL
    return 0


def _cmd_seed(args: argparse.Namespace) -> int:
    from nodes.seed import generate, registrations, write_csv, write_register_csv

    if args.subjects < 0:
        raise InvalidInput.for_field("subjects", "must not be negative")
    today = args.today or date.today()
    batches = generate(args.region, subjects=args.subjects, seed=args.seed, today=today)
    entries = registrations(args.region, subjects=args.subjects, seed=args.seed, today=today)
    started = time.perf_counter()
    if args.register_csv:
        rows = write_register_csv(entries, Path(args.register_csv))
        print(f"wrote {rows} register entries to {args.register_csv}")
    if args.csv:
        rows = write_csv(batches, Path(args.csv))
        print(f"wrote {rows} rows for {args.subjects} subjects to {args.csv} in {time.perf_counter() - started:.1f}s")
        return 0
    from infra.db import sync_engine
    from nodes.db import migrate
    from nodes.registers import RegisterWriter, frame_of
    from nodes.store import SqlRecordWriter

    migrate(args.db)
    engine = sync_engine(args.db)
    source = f"seed:{args.region.value}:{args.seed}:{args.subjects}"
    try:
        counts = SqlRecordWriter(engine).load(batches, source=source)
        register = RegisterWriter(engine).load(
            (
                frame_of(batch)
                for batch in registrations(args.region, subjects=args.subjects, seed=args.seed, today=today)
            ),
            source=source,
        )
    finally:
        engine.dispose()
    print(
        f"seeded {args.region.value} ({args.subjects} subjects): {counts.added} records added, "
        f"{counts.changed} new versions, {counts.unchanged} unchanged; {register.added + register.changed} "
        f"register entries stored, {register.unchanged} unchanged, in {time.perf_counter() - started:.1f}s"
    )
    return 0


def _demo_grant(gateway_url: str, logins: Sequence[Any]) -> str:
    """Once the gateway answers, let the clean enterprise grant the bank access, so that
    the bank's demo login has a report to fetch. Returns the code ("" if not possible)."""
    import json
    import urllib.error
    import urllib.request

    from gateway.demo import DEMO_BANK

    def call(path: str, body: dict[str, Any], token: str = "") -> dict[str, Any]:
        request = urllib.request.Request(
            gateway_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            return dict(json.loads(reply.read()))

    clean = next((login for login in logins if login.username == "clean-co"), None)
    if clean is None:
        return ""
    for _ in range(60):
        try:
            with urllib.request.urlopen(gateway_url + "/healthz", timeout=2):
                break
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    try:
        token = call("/api/v1/login", {"username": clean.username, "password": clean.password})["token"]
        terms = {"purpose": "融资信贷", "grantee_org": DEMO_BANK.code, "days": 30, "max_uses": 3, "mode": "fresh"}
        preview = call("/api/v1/grants/preview", terms, token)
        return str(call("/api/v1/grants", {"preview": preview["preview"], "confirm": True}, token)["code"])
    except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
        print(f"(no demo grant for the bank: {exc})", file=sys.stderr)
        return ""


DEMO_PORTS_HELP = (
    "first of the demo's gRPC ports: the Beijing, Tianjin and Hebei nodes listen on BASE, BASE+1 and BASE+2, "
    "the gateway's gRPC API on BASE+9 (default 50051: 50051-50053 and 50060), all on 127.0.0.1"
)


@dataclass(frozen=True, slots=True)
class DemoPorts:
    """Where `jjj demo` listens, all on 127.0.0.1."""

    nodes: dict[Region, int]
    gateway_http: int
    gateway_grpc: int


def demo_ports(base_port: int, gateway_port: int) -> DemoPorts:
    """The demo's ports: the nodes on ``base_port`` and the next two, the gateway's gRPC
    API on ``base_port`` + 9 (so the defaults give the usual 50051–50053 and 50060), the
    portal on ``gateway_port``. Two demos with different base ports share no gRPC port.

    Raises:
        InvalidInput: a port outside 1–65535, or the portal's port among the gRPC ones.
    """
    if not 1 <= base_port <= 65535 - 9:
        raise InvalidInput.for_field("base-port", f"must be between 1 and {65535 - 9}, got {base_port}")
    if not 1 <= gateway_port <= 65535:
        raise InvalidInput.for_field("gateway-port", f"must be between 1 and 65535, got {gateway_port}")
    ports = DemoPorts(
        nodes={Region.BEIJING: base_port, Region.TIANJIN: base_port + 1, Region.HEBEI: base_port + 2},
        gateway_http=gateway_port,
        gateway_grpc=base_port + 9,
    )
    if gateway_port in (*ports.nodes.values(), ports.gateway_grpc):
        raise InvalidInput.for_field("gateway-port", f"{gateway_port} is one of the demo's gRPC ports")
    return ports


def _cmd_demo(args: argparse.Namespace) -> int:
    """Seed three SQLite nodes (once) and run them until interrupted."""
    from credit.demo import DEMO_SUBJECTS

    layout = demo_ports(args.base_port, args.gateway_port)
    ports = layout.nodes
    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    exe = [sys.executable, "-m", "jjj"]
    for region in Region:
        db = data / f"{region.value}.db"
        if not db.exists():
            subprocess.run(
                [*exe, "seed", "--region", region.value, "--db", f"sqlite:///{db}", "--subjects", str(args.subjects)],
                check=True,
            )
    import json

    from credit.document import DEMO_ORGANISATION
    from federation.tls import SEAL, init_federation, issue_document_signer
    from gateway.access.keys import KeyStore
    from gateway.demo import seed_demo_accounts
    from gateway.registry import Registry

    certs = data / "certs"
    if not (certs / "ca.pem").exists():
        init_federation(certs, organisation=DEMO_ORGANISATION)
    if not (certs / f"{SEAL}.pem").exists():  # a demo directory from before printed reports were signed
        issue_document_signer(certs, DEMO_ORGANISATION)
    keys = KeyStore(data / "keys")
    keys.ensure()
    jwks_file = data / "gateway-jwks.json"
    jwks_file.write_text(json.dumps(keys.keyring().jwks()), encoding="utf-8")

    gateway_db = f"sqlite:///{data / 'gateway.db'}"
    registry = Registry.open(gateway_db)
    try:
        logins = seed_demo_accounts(registry)
    finally:
        registry.close()
    children = []
    for region, port in ports.items():
        db = data / f"{region.value}.db"
        cmd = [
            *exe, "node", "--region", region.value, "--db", f"sqlite:///{db}", "--listen", f"127.0.0.1:{port}",
            "--gateway-jwks", str(jwks_file), "--tls-cert", str(certs / f"node-{region.value}.pem"),
            "--tls-key", str(certs / f"node-{region.value}.key"), "--tls-ca", str(certs / "ca.pem"),
            "--peers", ",".join(f"{peer.value}=127.0.0.1:{p}" for peer, p in ports.items() if peer is not region),
        ]  # fmt: skip
        children.append(
            subprocess.Popen(cmd, env={**os.environ, "JJJ_LOG_LEVEL": os.environ.get("JJJ_LOG_LEVEL", "WARNING")})
        )
    nodes_arg = ",".join(f"{region.value}=127.0.0.1:{port}" for region, port in ports.items())
    gateway_url = f"http://127.0.0.1:{layout.gateway_http}"
    gateway_grpc = f"127.0.0.1:{layout.gateway_grpc}"
    # The gateway's certificate from the demo CA serves its gRPC API too (TLS, no client
    # certificate needed), as in production.
    children.append(
        subprocess.Popen(
            [
                *exe, "gateway", "--listen", f"127.0.0.1:{layout.gateway_http}", "--grpc-listen", gateway_grpc,
                "--db", gateway_db, "--keys-dir", str(data / "keys"), "--nodes", nodes_arg,
                "--tls-cert", str(certs / "gateway.pem"), "--tls-key", str(certs / "gateway.key"),
                "--tls-ca", str(certs / "ca.pem"),
                "--seal-cert", str(certs / f"{SEAL}.pem"), "--seal-key", str(certs / f"{SEAL}.key"),
            ],
            env={**os.environ, "JJJ_LOG_LEVEL": os.environ.get("JJJ_LOG_LEVEL", "WARNING")},
        )
    )  # fmt: skip
    bank_grant = _demo_grant(gateway_url, logins)
    print(f"\nPortal: {gateway_url}/   (log in with a demo login below; public verification: {gateway_url}/verify)")
    print(f"  API: {gateway_url}/api/v1/openapi.json   public keys: {gateway_url}/.well-known/jwks.json")
    print(f"  printed reports are signed by {DEMO_ORGANISATION} ({certs / (SEAL + '.pem')}, under {certs / 'ca.pem'})")
    print(f"  gRPC API (credit.v1.ReportGateway, TLS under the demo CA): {gateway_grpc}")
    print(f"    grpcurl -cacert {certs / 'ca.pem'} {gateway_grpc} list")
    print("\nDemo logins (the portal, or POST /api/v1/login):")
    for login in logins:
        print(f"  {login.username:<11} {login.password:<18} {login.role.value:<12} {login.description}")
    print(f"\nThree regional nodes (gRPC with mutual TLS under the demo CA in {certs}; each keeps a replica of")
    print("the other two, so the gateway can answer for a stopped node from a peer):")
    for region, port in ports.items():
        print(f"  {region.name_zh} {region.value:<8} 127.0.0.1:{port}   data: {data / (region.value + '.db')}")
    if bank_grant:
        print(f"\nA grant from clean-co to the demo bank (融资信贷, 3 uses, any account of the bank): {bank_grant}")
        print(f"  the bank opens {gateway_url}/g/{bank_grant} (or GET /api/v1/grants/{bank_grant}/report)")
    print("\nDemo subjects (the same in every region):")
    for demo in DEMO_SUBJECTS:
        print(f"  {demo.key:<13} {demo.id}  {demo.name}  — {demo.description}")
    print("\nPress Ctrl-C to stop.", flush=True)

    def on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a node exited; stopping the others", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            child.wait(timeout=15)


def _cmd_gateway(args: argparse.Namespace) -> int:
    from gateway.server import serve
    from gateway.settings import GatewaySettings

    settings = GatewaySettings.from_env(
        listen=args.listen,
        grpc_listen=args.grpc_listen,
        db_url=args.db,
        keys_dir=args.keys_dir,
        nodes=args.nodes,
        issuer=args.issuer,
        public_url=args.public_url,
        trust=args.trust,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_ca=args.tls_ca,
        organisation=args.organisation,
        contact=args.contact,
        seal_cert=args.seal_cert,
        seal_key=args.seal_key,
        seal_ca=args.seal_ca,
        workers=args.workers,
    )
    if not settings.nodes:
        raise InvalidInput.for_field("nodes", "no nodes given (--nodes beijing=HOST:PORT,… or JJJ_GATEWAY_NODES)")
    if settings.workers > 1:
        from jjj.workers import run_gateway_workers

        return run_gateway_workers(
            settings,
            log_format=os.environ.get("JJJ_LOG_FORMAT", "console"),
            log_level=os.environ.get("JJJ_LOG_LEVEL", "INFO"),
        )
    loop.run(serve(settings))
    return 0


def _cmd_accounts(args: argparse.Namespace) -> int:
    from credit import policy
    from credit.identifiers import SubjectKind, parse_subject
    from credit.policy import Role
    from gateway.access.auth import check_new_password, hash_password
    from gateway.registry import Account, Organisation, Registry
    from gateway.settings import GatewaySettings

    settings = GatewaySettings.from_env(db_url=args.db)
    try:
        role = Role(args.role)
    except ValueError:
        raise InvalidInput.for_field("role", f"one of {', '.join(r.value for r in Role)}") from None
    subject = parse_subject(args.subject, field="subject").id if args.subject else None
    full_name = args.full_name.strip() if args.full_name else None
    given = parse_subject(args.org, kind=SubjectKind.ENTERPRISE, field="org").id if args.org else None
    org = policy.account_organisation(role, subject, given)
    policy.check_account(role, subject, args.region, org, full_name=full_name)
    password = sys.stdin.readline().rstrip("\n")
    # The same rule as the portal's password change.
    check_new_password(password, username=args.username, field="password")
    registry = Registry.open(settings.db_url)
    try:
        if org is not None and args.org_name:
            registry.add_organisation(Organisation(org, args.org_name.strip()))
        elif org is not None and registry.find_organisation(org) is None and args.org:
            raise InvalidInput.for_field("org_name", f"{org} is a new organisation: name it with --org-name")
        registry.add_account(
            Account(
                args.username,
                hash_password(password),
                role.value,
                subject,
                args.name or args.username,
                region=args.region.value if args.region is not None else None,
                org_code=org,
                full_name=full_name,
            )
        )
    finally:
        registry.close()
    print(f"account {args.username} ({role.value}) saved")
    return 0


def _keys_dir(args: argparse.Namespace) -> Path:
    return Path(args.dir or os.environ.get("JJJ_GATEWAY_KEYS_DIR", "var/keys"))


def _cmd_keys(args: argparse.Namespace) -> int:
    import json

    from gateway.access.keys import KeyStore

    store = KeyStore(_keys_dir(args))
    if args.action == "rotate":
        key = store.rotate()
        print(f"new signing key {key.kid}; {len(store.keyring())} key(s) published in {store.directory}")
    else:
        print(json.dumps(store.keyring().jwks(), indent=2))
    return 0


def _read_jwks(source: str) -> dict[str, object]:
    import json
    import urllib.error
    import urllib.request

    try:
        if source.startswith(("http://", "https://")):
            with urllib.request.urlopen(source, timeout=10) as reply:
                data = reply.read()
        else:
            data = Path(source).read_bytes()
        document = json.loads(data)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise InvalidInput.for_field("jwks", f"cannot read the JWKS from {source}: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidInput.for_field("jwks", f"{source} is not a JWKS document")
    return document


def _cmd_certs(args: argparse.Namespace) -> int:
    from credit.document import DEMO_ORGANISATION
    from federation.tls import SEAL, gateway_identity, init_federation, issue, issue_document_signer, node_identity

    directory = Path(args.dir)
    if args.action == "init":
        names = init_federation(directory, hosts=args.host or (), organisation=args.organisation or DEMO_ORGANISATION)
        print(f"federation CA and certificates in {directory}: {', '.join(n + '.pem' for n in names)}")
        print("keep ca.key offline once the certificates are issued")
        return 0
    if not args.name:
        raise InvalidInput.for_field(
            "name", "which certificate: node-beijing, node-tianjin, node-hebei, gateway, seal, …"
        )
    if args.name.startswith(SEAL):
        if not args.organisation:
            raise InvalidInput.for_field("organisation", "a document-signing certificate needs --organisation NAME")
        cert = issue_document_signer(directory, args.organisation, name=args.name, days=args.days)
        print(
            f"{directory / (args.name + '.pem')}: document signing for {args.organisation}, "
            f"valid until {cert.not_valid_after_utc:%Y-%m-%d}"
        )
        return 0
    if args.identity:
        identity = args.identity
    elif args.name.startswith("node-"):
        identity = node_identity(Region.parse(args.name.removeprefix("node-")))
    elif args.name.startswith("gateway"):
        identity = gateway_identity(args.name.removeprefix("gateway").lstrip("-") or "jjj-gateway")
    else:
        raise InvalidInput.for_field("identity", "give --identity node:REGION or gateway:NAME for this name")
    cert = issue(directory, args.name, identity, hosts=[args.name, *(args.host or ())], days=args.days)
    print(f"{directory / (args.name + '.pem')}: {identity}, valid until {cert.not_valid_after_utc:%Y-%m-%d}")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    import json

    from sqlalchemy import func, inspect, select

    from credit.audit import Cadence, Checkpoint, checkpoint_document, checkpoint_kid, checkpoints_from_document
    from credit.signing import Keyring
    from infra.auditlog import AuditLog, PeerCheckpoints, checkpoints, peer_checkpoints
    from infra.db import sync_engine

    def kept_at(url: str, field: str) -> list[tuple[str, Checkpoint]]:
        engine = sync_engine(url)
        try:
            if not inspect(engine).has_table(peer_checkpoints.name):
                raise InvalidInput.for_field(field, f"{url} is not a gateway's database: it keeps no peer checkpoints")
            return PeerCheckpoints(engine).kept()
        finally:
            engine.dispose()

    if args.action == "kept":
        kept = [(issuer, c) for issuer, c in kept_at(args.db, "db") if args.issuer in (None, issuer)]
        print(json.dumps({"checkpoints": [checkpoint_document(c, issuer) for issuer, c in kept]}, indent=1))
        return 0
    if args.peer and not args.jwks:
        raise InvalidInput.for_field("jwks", "--peer needs the keys of the log being verified (--jwks)")
    keyring = Keyring.from_jwks(_read_jwks(args.jwks)) if args.jwks else Keyring()
    witnessed: list[Checkpoint] = []
    for source in args.peer or ():
        if "://" in source:
            found = kept_at(source, "peer")
        else:
            try:
                found = checkpoints_from_document(json.loads(Path(source).read_bytes()))
            except (OSError, ValueError) as exc:
                raise InvalidInput.for_field("peer", f"cannot read the checkpoints in {source}: {exc}") from exc
        # A peer keeps the checkpoints of every instance it trusts: this log's are those
        # signed by its keys.
        mine = [checkpoint for _, checkpoint in found if keyring.get(checkpoint_kid(checkpoint.jws)) is not None]
        if not mine:
            raise InvalidInput.for_field("peer", f"{source} keeps no checkpoint signed by the keys in {args.jwks}")
        witnessed += mine
    engine = sync_engine(args.db)
    try:
        with engine.connect() as conn:
            sealed = conn.execute(select(func.count()).select_from(checkpoints)).scalar() or 0
        # A gateway's log is sealed, whether or not checkpoints are left in it; a node's is not.
        gateway = any(inspect(engine).has_table(name) for name in ("grants", peer_checkpoints.name))
        if not args.jwks and (sealed or gateway):
            held = f"the log holds {sealed}" if sealed else "a gateway's log is sealed with"
            raise InvalidInput.for_field(
                "jwks",
                f"审计日志含签名检查点，核验需要网关公钥 ({held} signed checkpoints, which only the gateway's public "
                "keys can check: give --jwks FILE or URL)",
            )
        usual = Cadence()
        cadence = Cadence(
            usual.entries if args.seal_every is None else args.seal_every,
            usual.seconds if args.seal_seconds is None else args.seal_seconds,
        )
        # A node's log is unsealed: it has no cadence to keep.
        report = AuditLog(engine).verify(keyring, cadence=cadence if sealed or gateway else None, witnessed=witnessed)
    finally:
        engine.dispose()
    if report.intact:
        peers = f", {report.witnessed} kept by peers match" if args.peer else ""
        print(f"INTACT: {report.entries} entries, {report.checkpoints} signed checkpoints{peers}")
        return 0
    print(f"BROKEN at entry {report.broken_at}: {report.reason}", file=sys.stderr)
    return EXIT_FAILURE


def _print_case(case: Any, *, full: bool = False) -> None:
    record = case.record
    state = "处理中 open" if case.state.value == "open" else f"已办结 {case.resolution.value}"
    print(f"{case.number}  {case.kind.name_zh}  {state}  {case.subject_id}  filed {case.filed_at:%Y-%m-%d %H:%M} UTC")
    if record is not None:
        print(f"  record {case.record_id} v{case.record_version} (now v{record.version}, {record.status.value}): "
              f"{record.decision_no} {record.authority} {record.decided_on}")  # fmt: skip
    if full:
        print(f"  reason: {case.reason}")
        if case.attachment is not None:
            a = case.attachment
            print(f"  attachment: {a.filename} ({a.content_type}, {a.size} bytes, sha256 {a.sha256})")
        if case.resolution is not None:
            print(f"  decided by {case.resolved_by} at {case.resolved_at:%Y-%m-%d %H:%M} UTC: {case.resolution_note}")
            if case.new_version:
                print(f"  stored as version {case.new_version}")


def _cmd_objections(args: argparse.Namespace) -> int:
    from credit.audit import Action, Event
    from credit.cases import CaseKind, CaseState, Correction, Resolution
    from infra.auditlog import AuditLog
    from infra.db import sync_engine
    from nodes.db import migrate
    from nodes.objections import ObjectionDesk

    migrate(args.db)
    engine = sync_engine(args.db)
    desk = ObjectionDesk(engine, region=args.region)
    audit = AuditLog(engine)

    def audited(action: Action, case: Any, detail: str) -> None:
        audit.record_now(Event(args.by, "authority", action, case.subject_id, "异议办理", detail=detail))

    async def run() -> int:
        if args.action == "list":
            cases = await desk.list(
                subject_id=args.subject.strip().upper() if args.subject else None,
                state=CaseState(args.state) if args.state else None,
                kind=CaseKind(args.kind) if args.kind else None,
                limit=args.limit,
            )
            for case in cases:
                _print_case(case)
            print(f"{len(cases)} case(s)", file=sys.stderr)
        elif args.action == "show":
            case = await desk.get(args.target, with_attachment=bool(args.save_attachment))
            _print_case(case, full=True)
            if args.save_attachment:
                if case.attachment is None:
                    raise InvalidInput.for_field("save-attachment", f"case {case.number} has no attachment")
                Path(args.save_attachment).write_bytes(case.attachment.data)
                print(f"attachment written to {args.save_attachment}", file=sys.stderr)
        elif args.action == "resolve":
            correction = Correction(
                category=args.category,
                content=args.content,
                decided_on=args.decided_on,
                publicity_until=args.publicity_until,
                removed_on=args.removed_on,
                decision_no=args.decision_no,
            )
            resolution = Resolution(args.outcome)
            case = await desk.resolve(
                args.target,
                resolution,
                note=args.note,
                resolved_by=args.by,
                correction=None if correction.empty else correction,
            )
            audited(Action.OBJECTION_RESOLVED, case, f"{case.number} {resolution.value} version={case.new_version}")
            _print_case(case, full=True)
        else:
            case = await desk.repair(args.target, note=args.note, resolved_by=args.by)
            audited(Action.CREDIT_REPAIRED, case, f"{case.number} record={case.record_id} version={case.new_version}")
            _print_case(case, full=True)
        return 0

    try:
        return asyncio.run(run())
    finally:
        desk.close()
        engine.dispose()


def _cmd_verify(args: argparse.Namespace) -> int:
    from credit.signing import Keyring, VerificationError
    from gateway.reports.pdf import check_pdf
    from gateway.reports.seal import SealTrust
    from gateway.reports.verify import signed_document

    keyring = Keyring.from_jwks(_read_jwks(args.jwks))
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"NOT GENUINE: cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    verify_url_for = None
    if args.jwks.startswith(("http://", "https://")):
        # Keys fetched from a gateway: its verify page is where a PDF's QR code must lead.
        site = args.jwks.split("/.well-known/", 1)[0].rstrip("/")
        verify_url_for = lambda doc: f"{site}/verify?code={doc.get('verification_code', '')}"  # noqa: E731
    trust = SealTrust.from_file(args.ca) if args.ca else None
    sealed_by = ""
    try:
        if data.startswith(b"%PDF"):
            if trust is None:
                raise InvalidInput.for_field("ca", "a PDF's signature is checked against the federation CA: give --ca")
            printed = check_pdf(data, keyring, trust=trust, verify_url_for=verify_url_for)
            document, sealed_by = printed.document, printed.sealed_by
        else:
            document = signed_document(data, keyring, trust=trust, verify_url_for=verify_url_for)
    except VerificationError as exc:
        print(f"NOT GENUINE: {exc.detail}", file=sys.stderr)
        return EXIT_FAILURE
    from gateway.reports.service import summary_of

    shown = summary_of(document, status="", now=datetime.now(UTC))
    window = shown["window"]
    name = f" {shown['subject_name']}" if shown["subject_name"] else ""
    print(
        f"GENUINE: report {shown['report_no']} for {shown['subject_id']}{name}, verdict {shown['verdict']}, "
        f"issued {shown['issued_at']} by {shown['issuer_name']} ({document.get('issuer')})"
    )
    print(
        f"  window {window['start']} to {window['cutoff']} "
        f"({window['years']} years before {window['application_date']}), "
        f"profile {shown['profile_name']} ({shown['profile']})"
    )
    if sealed_by:
        print(f"  PDF signed by {sealed_by} (PAdES, certificate under the given CA; unchanged since signing)")
    if shown["valid_until"]:
        past = " — PAST ITS VALIDITY: it speaks for the day it was issued" if shown["past_validity"] else ""
        print(f"  valid until {shown['valid_until']}{past}")
    return 0


def _tls_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tls-cert", help="mTLS: this member's certificate (PEM)")
    parser.add_argument("--tls-key", help="mTLS: its private key (PEM)")
    parser.add_argument("--tls-ca", help="mTLS: the federation CA's certificate (PEM)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jjj", description="Beijing–Tianjin–Hebei public credit report federation")
    sub = parser.add_subparsers(dest="command", required=True)

    node = sub.add_parser("node", help="run a regional node (gRPC)")
    node.add_argument("--region", type=_region, help="beijing, tianjin or hebei")
    node.add_argument("--db", help="database URL (sqlite:///node.db or postgresql://…)")
    node.add_argument("--listen", help="HOST:PORT to serve gRPC on (default 127.0.0.1:50051)")
    node.add_argument("--metrics-listen", help="HOST:PORT for /metrics and /healthz over HTTP")
    node.add_argument("--profile", help="default report profile (default tianjin-2023)")
    node.add_argument("--pilot-codes", help="file of known early pilot codes, one per line")
    node.add_argument("--gateway-jwks", help="the gateway's JWKS file: queries must carry its signed assertion")
    node.add_argument(
        "--allow-unasserted", action="store_true", help="accept queries without an assertion (development only)"
    )
    node.add_argument(
        "--peers",
        help="peer nodes to keep a replica of: beijing=HOST:PORT,hebei=HOST:PORT (over mTLS with --tls-* when given)",
    )
    _tls_arguments(node)
    node.set_defaults(func=_cmd_node)

    ingest = sub.add_parser(
        "ingest",
        help="load an authority's file (CSV, XLSX, XLS or JSONL in a known layout) into a node's database: "
        "records, or a register of market entities (市场主体登记信息), told by the file's columns",
    )
    ingest.add_argument("--region", type=_region, required=True)
    ingest.add_argument("--db", required=True, help="database URL")
    ingest.add_argument("--rejects", help="where to write rejected rows (default FILE.rejects.csv)")
    ingest.add_argument("--pilot-codes", help="file of known early pilot codes, one per line")
    ingest.add_argument("--encoding", help="CSV encoding (default: UTF-8 or GB18030, detected)")
    ingest.add_argument("--sheet", help="workbook sheet, by name or number (default: the first)")
    ingest.add_argument("--domain", help="domain (领域) of every row that names none, code or Chinese name")
    ingest.add_argument("--scope", help="data scope (数据范围) of every row that names none")
    ingest.add_argument("--dry-run", action="store_true", help="check and count everything, store nothing")
    ingest.add_argument("file")
    ingest.set_defaults(func=_cmd_ingest)

    seed = sub.add_parser(
        "seed", help="generate deterministic synthetic records and the region's register of market entities"
    )
    seed.add_argument("--region", type=_region, required=True)
    seed.add_argument("--db", help="database URL to load them into")
    seed.add_argument("--csv", help="write an ingestible CSV instead of loading a database")
    seed.add_argument("--register-csv", help="also write the region's register of market entities as an ingestible CSV")
    seed.add_argument("--subjects", type=int, default=1000)
    seed.add_argument("--seed", type=int, default=2024)
    seed.add_argument("--today", type=_date, help="date the data is made relative to (default today)")
    seed.set_defaults(func=_cmd_seed)

    gateway = sub.add_parser("gateway", help="run the gateway (HTTP)")
    gateway.add_argument("--listen", help="HOST:PORT for HTTP (default 127.0.0.1:8080)")
    gateway.add_argument("--grpc-listen", help="HOST:PORT for gRPC (default 127.0.0.1:50060)")
    gateway.add_argument("--db", help="registry database URL (default sqlite:///gateway.db)")
    gateway.add_argument("--keys-dir", help="signing key directory (default var/keys)")
    gateway.add_argument("--nodes", help="beijing=HOST:PORT,tianjin=HOST:PORT,hebei=HOST:PORT")
    gateway.add_argument("--issuer", help="the name the gateway signs as")
    gateway.add_argument("--public-url", help="the URL users reach this instance at (links and QR codes)")
    gateway.add_argument("--trust", help="peer instances whose sessions it honours: ISSUER=JWKS_FILE_OR_URL,…")
    gateway.add_argument("--organisation", help="the issuing organisation's Chinese name, as reports print it")
    gateway.add_argument("--contact", help="its operator's contact details, printed on a report's last page")
    gateway.add_argument("--seal-cert", help="the organisation's document-signing certificate and chain (PEM)")
    gateway.add_argument("--seal-key", help="its private key (PEM)")
    gateway.add_argument("--seal-ca", help="CA(s) a handed-in PDF's signature must chain to (default: --tls-ca)")
    gateway.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes on the same ports (default 1; more need PostgreSQL; see docs/deploy.md)",
    )
    _tls_arguments(gateway)
    gateway.set_defaults(func=_cmd_gateway)

    accounts = sub.add_parser("accounts", help="add or replace a gateway account (password on standard input)")
    accounts.add_argument("username")
    accounts.add_argument("--role", required=True, help="enterprise, person, third_party, agency or admin")
    accounts.add_argument("--subject", help="the enterprise's or person's identifier")
    accounts.add_argument("--name", help="display name")
    accounts.add_argument(
        "--org",
        help="the unified social credit code of the account's organisation: grants made out to it are redeemed by "
        "any of its accounts (needed for a third party; an enterprise's default: its subject)",
    )
    accounts.add_argument("--org-name", help="the organisation's name (needed the first time an --org is used)")
    accounts.add_argument(
        "--full-name", help="a person's full name as verified (实名), shown to that person on their own reports"
    )
    accounts.add_argument(
        "--region",
        type=_region,
        help="an agency officer's region: the officer lists and decides that region's objections only "
        "(default: every region)",
    )
    accounts.add_argument("--db", help="registry database URL")
    accounts.set_defaults(func=_cmd_accounts)

    keys = sub.add_parser("keys", help="the gateway's signing keys")
    keys.add_argument("action", choices=("rotate", "jwks"), help="rotate: make a new signing key; jwks: print the JWKS")
    keys.add_argument("--dir", "--keys-dir", help="key directory (default $JJJ_GATEWAY_KEYS_DIR or var/keys)")
    keys.set_defaults(func=_cmd_keys)

    verify = sub.add_parser(
        "verify", help="verify a signed report, JSON holding it, or its PDF, offline (exit 0 genuine, 1 not)"
    )
    verify.add_argument("file", help='the signed report (compact JWS, or JSON {"jws": …}) or the printed report (PDF)')
    verify.add_argument("--jwks", required=True, help="the published keys: a file or an http(s) URL")
    verify.add_argument(
        "--ca", help="for a PDF: the federation CA (PEM) its signature (PAdES) must chain to, e.g. certs/ca.pem"
    )
    verify.set_defaults(func=_cmd_verify)

    certs = sub.add_parser("certs", help="the federation's CA and mTLS certificates")
    certs.add_argument("action", choices=("init", "issue"), help="init: CA and every member; issue: add or renew one")
    certs.add_argument("dir", help="certificate directory (holds ca.pem and ca.key)")
    certs.add_argument(
        "name", nargs="?", help="for issue: node-beijing, node-tianjin, node-hebei, gateway, seal (document signing), …"
    )
    certs.add_argument("--host", action="append", help="a host name or address the member is reached at (repeat)")
    certs.add_argument("--identity", help="for issue: node:REGION or gateway:NAME (default from the name)")
    certs.add_argument(
        "--organisation",
        help="the issuing organisation's Chinese name: init issues seal.pem for it (default: the demo's); "
        "issue seal… issues its document-signing certificate",
    )
    certs.add_argument("--days", type=int, default=365, help="validity of an issued certificate (default 365)")
    certs.set_defaults(func=_cmd_certs)

    audit = sub.add_parser(
        "audit",
        help="check an audit log's hash chain (exit 0 intact, 1 broken); list the checkpoints a gateway kept of "
        "its peers",
        description="verify: walk the chain, its signed checkpoints and its head; a gateway's log must carry a "
        "checkpoint at every --seal-every-th entry and at least every --seal-seconds while it is written. "
        "kept: print the checkpoints the gateway at --db kept of its peers, as JSON for --peer.",
    )
    audit.add_argument("action", choices=("verify", "kept"))
    audit.add_argument("--db", required=True, help="the gateway's or a node's database URL")
    audit.add_argument("--jwks", help="keys that signed the checkpoints: a file or an http(s) URL")
    audit.add_argument(
        "--peer",
        action="append",
        metavar="DB_URL_OR_FILE",
        help="verify: a peer gateway's database, or a file from `jjj audit kept` there (or a checkpoint saved from "
        "GET /api/v1/audit/checkpoint): every checkpoint of this log it keeps must match, and the log must reach "
        "the newest (repeat for several peers)",
    )
    audit.add_argument(
        "--seal-every",
        type=int,
        metavar="N",
        help="verify: every entry numbered a multiple of N has a checkpoint (default 1000, as the gateway seals)",
    )
    audit.add_argument(
        "--seal-seconds",
        type=float,
        metavar="T",
        help="verify: the gateway's JJJ_GATEWAY_AUDIT_SEAL_SECONDS (default 60); 0 turns the time rule off",
    )
    audit.add_argument("--issuer", help="kept: only the checkpoints of this peer")
    audit.set_defaults(func=_cmd_audit)

    objections = sub.add_parser(
        "objections",
        help="an authority's desk at a node: list, show and decide objections (异议) and credit repair (信用修复)",
        description="Works on the node's database. Deciding a case (or applying a repair) stores the record's "
        "next version, which the node's change feed sends to the gateway and the peers.",
    )
    objections.add_argument("action", choices=("list", "show", "resolve", "repair"))
    objections.add_argument("target", nargs="?", help="show/resolve: the case number; repair: the record id")
    objections.add_argument("--region", type=_region, required=True)
    objections.add_argument("--db", required=True, help="the node's database URL")
    objections.add_argument("--state", choices=("open", "closed"), help="list: only open or closed cases")
    objections.add_argument("--kind", choices=("objection", "credit_repair"), help="list: only one kind")
    objections.add_argument("--subject", help="list: one subject's cases")
    objections.add_argument("--limit", type=int, default=100, help="list: at most this many (1–1000, default 100)")
    objections.add_argument("--save-attachment", metavar="FILE", help="show: write the attachment to FILE")
    objections.add_argument(
        "--as",
        dest="outcome",
        choices=("upheld", "corrected", "revoked", "repaired", "refused"),
        help="resolve: the decision (objections: upheld/corrected/revoked; repair applications: repaired/refused)",
    )
    objections.add_argument("--note", help="resolve/repair: the reasons or the repair decision's reference")
    objections.add_argument("--by", help="resolve/repair: who decides (recorded with the case and in the audit log)")
    for name in ("category", "content", "decision-no"):
        objections.add_argument(f"--{name}", help=f"resolve --as corrected: the corrected {name.replace('-', ' ')}")
    for name in ("decided-on", "publicity-until", "removed-on"):
        objections.add_argument(f"--{name}", type=_date, help=f"resolve --as corrected: the corrected {name} date")
    objections.set_defaults(func=_cmd_objections)

    demo = sub.add_parser("demo", help="seed and run the three demo nodes and the gateway on SQLite")
    demo.add_argument("--data-dir", default="var/demo")
    demo.add_argument("--base-port", type=int, default=50051, metavar="BASE", help=DEMO_PORTS_HELP)
    demo.add_argument("--subjects", type=int, default=5000)
    demo.add_argument(
        "--gateway-port", type=int, default=8080, metavar="PORT", help="the portal and HTTP API (default 8080)"
    )
    demo.set_defaults(func=_cmd_demo)
    return parser


def _check_objection_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    needs = {
        "list": (),
        "show": ("target",),
        "resolve": ("target", "outcome", "note", "by"),
        "repair": ("target", "note", "by"),
    }[args.action]
    flags = {"target": "a case number or record id", "outcome": "--as", "note": "--note", "by": "--by"}
    missing = [flags[name] for name in needs if not getattr(args, name)]
    if missing:
        parser.error(f"objections {args.action} needs {', '.join(missing)}")
    if args.action == "list" and args.target:
        parser.error("objections list takes no case number (use --subject, --state, --kind)")


def main(argv: Sequence[str] | None = None) -> int:
    from jjj.logs import configure

    parser = build_parser()
    args = parser.parse_args(argv)
    # Everything the command creates — databases, keys, certificates, demo data, reports of
    # rejected rows — is its owner's alone (files 0600, directories 0700).
    os.umask(0o077)
    configure(os.environ.get("JJJ_LOG_FORMAT", "console"), os.environ.get("JJJ_LOG_LEVEL", "INFO"))
    if args.command == "seed" and bool(args.db) == bool(args.csv):
        parser.error("seed needs exactly one of --db or --csv")
    if args.command == "objections":
        _check_objection_args(parser, args)
    try:
        return int(args.func(args))
    except CreditError as exc:
        print(f"jjj {args.command}: {exc.detail}", file=sys.stderr)
        return EXIT_BAD_INPUT if isinstance(exc, InvalidInput) else EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a message, not a traceback, for the operator
        from sqlalchemy.exc import SQLAlchemyError

        if isinstance(exc, SQLAlchemyError | OSError | RuntimeError):
            print(f"jjj {args.command}: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
            return EXIT_FAILURE
        raise
