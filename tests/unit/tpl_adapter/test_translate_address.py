"""A canonical address as ShipBob's UpdateAddressRequest (`PUT /shipment/{id}:updateAddress`)."""

from __future__ import annotations

from retail.common.v1 import common_pb2
from services.tpl_adapter.translate.release import address_update


def test_a_corrected_address_becomes_shipbobs_update_address_request():
    address = common_pb2.Address(
        name="Ada Lovelace",
        lines=["42 Harbour Rd", "Unit 7", "Back door"],
        city="Portland",
        province_code="ME",
        postal_code="04101",
        country_code="US",
        phone="+12075550100",
    )

    body = address_update(address)

    assert body == {
        "name": "Ada Lovelace",
        "company_name": None,
        "phone_number": "+12075550100",
        "street_address1": "42 Harbour Rd",
        "street_address2": "Unit 7, Back door",
        "city": "Portland",
        "state": "ME",
        "zip_code": "04101",
        "country_code": "US",
    }
