"""Reset and seed determinism of the Business Central stand-in."""


def _state(bc):
    state = bc.raw.get("/_sandbox/state").json()
    state.pop("requestsInWindow")
    return state


def test_same_seed_gives_the_same_demo_data_and_ids(make_bc):
    first, second, other = make_bc(seed=11), make_bc(seed=11), make_bc(seed=12)

    order_a = first.create_order("#S-1").json()
    order_b = second.create_order("#S-1").json()

    assert _state(first) == _state(second)
    assert order_a["id"] == order_b["id"] and order_a["number"] == order_b["number"]
    assert _state(first)["company"]["id"] != _state(other)["company"]["id"]


def test_demo_data_has_the_documented_customers_items_and_locations(bc):
    state = _state(bc)

    assert [i["number"] for i in state["items"]] == [f"SKU-{n}" for n in range(1001, 1011)]
    assert {loc["code"] for loc in state["locations"]} == {"EAST", "WEST"}
    customers = {c["number"]: c for c in state["customers"]}
    assert customers["C30000"]["blocked"] == "All"
    assert customers["C50000"]["taxAreaId"] == "00000000-0000-0000-0000-000000000000"
    assert all(item["inventory"] > 0 for item in state["items"])


def test_reset_restores_the_seeded_state_and_clears_faults_counts_and_holds(bc):
    pristine = _state(bc)
    bc.create_order("#R-1")
    bc.raw.put("/_sandbox/faults", json={"*": {"latency_ms": 1}})
    bc.raw.put("/_sandbox/holds", json={"externalDocumentNumber": "#R-2", "fraudHold": True})

    reset = bc.raw.post("/_sandbox/reset")

    assert reset.json() == {"seed": 0}
    assert _state(bc) == pristine
    assert bc.raw.get("/_sandbox/faults").json()["faults"] == {}
    assert bc.raw.get("/_sandbox/counts").json()["attempts"] == {}
    assert bc.api.get(bc.url("salesOrders")).status_code == 200


def test_reset_with_another_seed_changes_the_company(bc):
    bc.raw.post("/_sandbox/reset", json={"seed": 5})

    companies = bc.api.get("/api/v2.0/companies").json()["value"]

    assert companies[0]["id"] != bc.company_id
    assert bc.raw.get("/_sandbox/faults").json()["seed"] == 5
