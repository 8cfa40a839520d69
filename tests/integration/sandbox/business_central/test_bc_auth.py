"""OAuth2 client credentials and bearer auth on the Business Central stand-in."""


def test_client_credentials_grant_returns_a_bearer_token(bc):
    response = bc.token()

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert body["access_token"]


def test_wrong_secret_is_invalid_client(bc):
    response = bc.token(client_secret="nope")

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_other_grant_or_scope_is_refused(bc):
    assert bc.token(grant_type="password").json()["error"] == "unsupported_grant_type"
    assert bc.token(scope="https://api.businesscentral.dynamics.com").json()["error"] == "invalid_scope"


def test_api_without_a_token_is_401(bc):
    response = bc.raw.get("/api/v2.0/companies")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "Authentication_InvalidCredentials"
    assert "www-authenticate" in response.headers


def test_unknown_or_expired_token_is_401(bc):
    unknown = bc.raw.get("/api/v2.0/companies", headers={"Authorization": "Bearer forged"})
    assert bc.api.get("/api/v2.0/companies").status_code == 200

    bc.clock.now += 3600

    assert unknown.status_code == 401
    assert bc.api.get("/api/v2.0/companies").status_code == 401


def test_the_real_url_prefix_with_tenant_and_environment_is_served(bc):
    response = bc.api.get(f"/v2.0/contoso-tenant/production/api/v2.0/companies({bc.company_id})/items")

    assert response.status_code == 200
    assert (
        "/v2.0/contoso-tenant/production/api/v2.0/$metadata#companies(" in response.json()["@odata.context"]
    )
