"""gen/ must be exactly what protos/ generates now."""

from tools import protogen


def test_generated_code_matches_the_protos():
    stale = protogen.stale_files()

    assert stale == [], f"gen/ is stale, run `make gen`: {stale}"


def test_every_retail_proto_has_generated_code():
    protos = [p for p in protogen.proto_files() if p.startswith("retail/")]

    missing = [p for p in protos if not (protogen.GEN / p.replace(".proto", "_pb2.py")).exists()]

    assert {p.split("/")[1] for p in protos} >= {
        "common",
        "orders",
        "inventory",
        "shipments",
        "returns",
        "catalog",
        "ops",
    }
    assert missing == []
