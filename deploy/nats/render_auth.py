"""Render the NATS users and per-subject permissions (k8s/base/nats/auth.conf) from the event contracts.

reference/reliability.md C6: each service may publish only its own event subjects and may use the
JetStream API only for its own stream and its own durable consumers; only `admin` may delete or
purge. Who publishes what is read from the protos, so the permissions follow the contracts:

- an event (a message whose first field is `retail.common.v1.EventMeta meta = 1`) whose leading
  comment says "Published by the <name>-adapter" belongs to that adapter;
- every other event of `protos/retail/<context>/v1/` belongs to the service named `<context>`, which
  also owns the stream `<CONTEXT>` capturing `retail.<context>.v1.>`.

What each service consumes is the table `READS` below. A service's durable consumer on a stream is
named after the service (`erp-adapter` on `ORDERS`): JetStream forbids `.` in consumer names, and the
permission names the consumer exactly.

Run `python deploy/nats/render_auth.py` after changing a proto or `READS`; `--check` exits 1 when
the committed file is stale (tests/unit/deploy runs the same comparison).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos" / "retail"
OUTPUT = ROOT / "k8s" / "base" / "nats" / "auth.conf"

#: Domain services own a context each; adapters own the events their protos comments assign them.
DOMAIN_SERVICES = ("orders", "inventory", "shipments", "returns", "catalog", "ops")
ADAPTERS = ("shopify-adapter", "erp-adapter", "tpl-adapter")

#: Streams each service reads through its own durable consumer.
READS: dict[str, tuple[str, ...]] = {
    "orders": ("ORDERS", "INVENTORY", "SHIPMENTS", "RETURNS"),
    "inventory": ("ORDERS", "SHIPMENTS", "RETURNS"),
    "shipments": ("ORDERS", "SHIPMENTS"),
    "returns": ("ORDERS", "SHIPMENTS", "RETURNS"),
    "catalog": ("CATALOG",),
    "ops": ("ORDERS", "INVENTORY", "SHIPMENTS", "RETURNS", "CATALOG", "OPS"),
    "shopify-adapter": ("ORDERS", "INVENTORY", "SHIPMENTS", "RETURNS", "CATALOG"),
    "erp-adapter": ("ORDERS", "SHIPMENTS", "RETURNS", "CATALOG"),
    "tpl-adapter": ("ORDERS", "RETURNS"),
}

#: JetStream API subjects no service user may use, whatever else it is allowed (deny wins).
ADMIN_ONLY = (
    "$JS.API.STREAM.DELETE.>",
    "$JS.API.STREAM.PURGE.>",
    "$JS.API.STREAM.MSG.DELETE.>",
    "$JS.API.CONSUMER.DELETE.>",
)

_EVENT = re.compile(
    r"((?:^[ \t]*//[^\n]*\n)*)^message (\w+) \{\n"  # leading comment, name
    r"(?:[ \t]*//[^\n]*\n)*[ \t]*retail\.common\.v1\.EventMeta meta = 1\b",  # first field: EventMeta
    re.M,
)
_PUBLISHED_BY = re.compile(r"Published by the ([a-z]+-adapter)\b")
#: The integration context's events are published by every adapter, which share its stream.
SHARED_ADAPTER_CONTEXT = "integration"


@dataclass(frozen=True)
class Event:
    """One event contract: its context, subject and the service that publishes it."""

    context: str
    subject: str
    publisher: str


def read_events(protos: Path = PROTOS) -> list[Event]:
    """Every event declared under `protos/retail/<context>/v1/`, with its publisher."""
    events = []
    for path in sorted(protos.glob("*/v1/*.proto")):
        context = path.parts[-3]
        text = path.read_text(encoding="utf-8")
        for match in _EVENT.finditer(text):
            comment, name = match.group(1), match.group(2)
            owner = _PUBLISHED_BY.search(" ".join(comment.split()))
            events.append(Event(context, f"retail.{context}.v1.{name}", owner.group(1) if owner else context))
    return events


@dataclass
class Permissions:
    """Publish and subscribe allow/deny lists of one user."""

    pub_allow: list[str] = field(default_factory=list)
    pub_deny: list[str] = field(default_factory=list)
    sub_allow: list[str] = field(default_factory=list)


def permissions_for(service: str, events: list[Event]) -> Permissions:
    """The least-privilege permissions of one service user."""
    perms = Permissions()
    streams = sorted({e.context.upper() for e in events})
    if service in DOMAIN_SERVICES:
        own_stream = service.upper()
        perms.pub_allow.append(f"retail.{service}.v1.>")
        # Events of this context that an adapter owns: the domain service must not forge them.
        perms.pub_deny += sorted(e.subject for e in events if e.context == service and e.publisher != service)
        touched = {own_stream}
    else:
        own_stream = SHARED_ADAPTER_CONTEXT.upper()
        mine = [e for e in events if e.publisher == service or e.context == SHARED_ADAPTER_CONTEXT]
        perms.pub_allow += sorted(e.subject for e in mine)
        touched = {e.context.upper() for e in mine} | {own_stream}
    reads = [s for s in READS[service] if s in streams]
    touched |= set(reads)
    perms.pub_allow.append("$JS.API.INFO")
    perms.pub_allow += [f"$JS.API.STREAM.INFO.{s}" for s in sorted(touched)]
    if own_stream is not None:
        # The owner provisions its stream at start (libs.bus.streams.provision): create or update only.
        perms.pub_allow += [f"$JS.API.STREAM.CREATE.{own_stream}", f"$JS.API.STREAM.UPDATE.{own_stream}"]
    for stream in reads:
        consumer = f"{stream}.{service}"
        perms.pub_allow += [
            f"$JS.API.CONSUMER.CREATE.{consumer}",
            f"$JS.API.CONSUMER.CREATE.{consumer}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{consumer}",
            f"$JS.API.CONSUMER.INFO.{consumer}",
            f"$JS.API.CONSUMER.MSG.NEXT.{consumer}",
            f"$JS.ACK.{consumer}.>",
            # The dead-letter handler fetches the original message named by the advisory.
            f"$JS.API.STREAM.MSG.GET.{stream}",
        ]
        perms.sub_allow.append(f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{consumer}")
    perms.pub_deny += list(ADMIN_ONLY)
    # Replies: publish acks, JetStream API responses and pulled messages arrive on the inbox.
    perms.sub_allow.insert(0, "_INBOX.>")
    perms.pub_allow = list(dict.fromkeys(perms.pub_allow))
    return perms


def password_variable(user: str) -> str:
    """The environment variable holding a user's password (`SHOPIFY_ADAPTER_NATS_PASSWORD`)."""
    if user == "admin":
        return "NATS_ADMIN_PASSWORD"
    return user.replace("-", "_").upper() + "_NATS_PASSWORD"


def _list(items: list[str], indent: str) -> str:
    if not items:
        return "[]"
    inner = "".join(f'{indent}  "{item}"\n' for item in items)
    return f"[\n{inner}{indent}]"


def render(events: list[Event] | None = None) -> str:
    """The text of k8s/base/nats/auth.conf."""
    events = read_events() if events is None else events
    out = [
        "# NATS users and per-subject permissions (reference/reliability.md C6).",
        "# GENERATED by deploy/nats/render_auth.py from protos/ and its READS table; do not edit by hand.",
        "# Included by k8s/base/nats/nats.conf (cluster) and deploy/nats/nats.conf (compose). Passwords come",
        "# from the server's environment (Secret `nats-users`); there is no anonymous user.",
        "",
    ]
    users = (*DOMAIN_SERVICES, *ADAPTERS)
    for service in users:
        perms = permissions_for(service, events)
        var = service.replace("-", "_").upper() + "_PERMISSIONS"
        out += [
            f"# {service}: reads {', '.join(READS[service])}",
            f"{var} = {{",
            "  publish = {",
            f"    allow = {_list(perms.pub_allow, '    ')}",
            f"    deny = {_list(perms.pub_deny, '    ')}",
            "  }",
            "  subscribe = {",
            f"    allow = {_list(perms.sub_allow, '    ')}",
            "  }",
            "}",
            "",
        ]
    out += [
        "# admin: operators' replay of dead letters, stream purge and repair (nats CLI); never a service.",
        'ADMIN_PERMISSIONS = { publish = { allow = [">"] }, subscribe = { allow = [">"] } }',
        "",
        "authorization {",
        "  users = [",
        f"    {{ user = admin, password = ${password_variable('admin')}, permissions = $ADMIN_PERMISSIONS }}",
    ]
    for service in users:
        var = service.replace("-", "_").upper() + "_PERMISSIONS"
        out.append(
            f'    {{ user = "{service}", password = ${password_variable(service)}, permissions = ${var} }}'
        )
    out += ["  ]", "}", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Write k8s/base/nats/auth.conf, or with `--check` report whether it is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(
                f"{OUTPUT.relative_to(ROOT)} is stale: run python deploy/nats/render_auth.py", file=sys.stderr
            )
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
