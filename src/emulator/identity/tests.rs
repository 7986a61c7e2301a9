//! The parties over HTTP, as clients meet them: each success, each refusal, expiry on the
//! emulator's clock (pushed forward, never slept), forged and foreign tokens, and the service
//! principal added on first use.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::cert::sign_assertion;
use super::jwt::{self, Jwt};
use super::*;
use crate::emulator::{Emulator, EmulatorConfig, OTHER_TEST_CERTIFICATE_PEM, TEST_CERTIFICATE_PEM};

const PAT: &str = "pat-of-the-identity-tests";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const ORG: &str = "contoso";
const ORG_ID: &str = "6f6a4c5e-1d2b-4c3a-9e8f-0a1b2c3d4e5f";
const PROJECT_ID: &str = "0c7e1b2a-3d4f-4a5b-8c6d-7e8f9a0b1c2d";
const JOB_TOKEN: &str = "job-access-token";
const CONNECTION: &str = "5b0c9f3e-8a7d-4e6f-b5a4-c3d2e1f0a9b8";
const HIDDEN_CONNECTION: &str = "9e8d7c6b-5a4f-4e3d-a2b1-c0d9e8f7a6b5";
/// Workload identity federation, a workspace principal.
const WIF_APP: &str = "11111111-1111-4111-8111-111111111111";
/// Client secret; Contributor on the workspace but not a principal.
const SECRET_APP: &str = "22222222-2222-4222-8222-222222222222";
const CERT_APP: &str = "33333333-3333-4333-8333-333333333333";
const EXPIRED_APP: &str = "77777777-7777-4777-8777-777777777777";
/// Not a principal and not a contributor.
const OUTSIDER_APP: &str = "88888888-8888-4888-8888-888888888888";
const MANAGED: &str = "44444444-4444-4444-8444-444444444444";
const OAUTH_SP: &str = "55555555-5555-4555-8555-555555555555";
const FEDERATED_SP: &str = "66666666-6666-4666-8666-666666666666";
const RESOURCE_ID: &str =
    "/subscriptions/0001/resourceGroups/data/providers/Microsoft.Databricks/workspaces/contoso";
const DATABRICKS_SCOPE: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default";
const MANAGEMENT_SCOPE: &str = "https://management.core.windows.net//.default";

fn devops() -> DevOps {
    DevOps::new(ORG, ORG_ID, "data", PROJECT_ID, "ci", JOB_TOKEN)
        .connection(CONNECTION, "databricks-prod")
        .unauthorized_connection(HIDDEN_CONNECTION, "databricks-other")
}

fn identities() -> Identities {
    let devops = devops();
    Identities::default()
        .with_application(EntraApplication::new(TENANT, WIF_APP).federated(
            &devops.issuer(),
            &devops.connection_subject("databricks-prod"),
        ))
        .with_application(EntraApplication::new(TENANT, SECRET_APP).secret("app-secret"))
        .with_application(EntraApplication::new(TENANT, OUTSIDER_APP).secret("outsider-secret"))
        .with_application(EntraApplication::new(TENANT, EXPIRED_APP).expired_secret("old"))
        .with_application(EntraApplication::new(TENANT, CERT_APP).certificate(TEST_CERTIFICATE_PEM))
        .with_managed_identity(ManagedIdentity::new(MANAGED).identity_header("identity-header"))
        .with_workspace(
            WorkspaceAccess::new()
                .principal(WIF_APP)
                .principal(CERT_APP)
                .principal(MANAGED)
                .resource_id(RESOURCE_ID)
                .contributor(SECRET_APP)
                .oauth_client(OAUTH_SP, "oauth-secret")
                .federation_policy(FEDERATED_SP, &devops.issuer(), &devops.pipeline_subject()),
        )
        .with_devops(devops)
}

struct Fixture {
    emulator: Emulator,
    http: reqwest::Client,
    base: String,
}

async fn start(identities: Identities) -> Fixture {
    let config = EmulatorConfig {
        token: PAT.into(),
        identities,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = emulator.base_url();
    Fixture {
        emulator,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        base,
    }
}

async fn body(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

impl Fixture {
    fn identity(&self) -> &IdentityState {
        &self.emulator.shared.identity
    }

    fn oidctoken_url(&self, org: &str, connection: Option<&str>) -> String {
        let mut url = format!(
            "{}/{org}/{PROJECT_ID}/_apis/distributedtask/hubs/build/plans/{}/jobs/{}/oidctoken?api-version=7.1-preview.1",
            self.base,
            random::guid(),
            random::guid()
        );
        if let Some(id) = connection {
            url.push_str(&format!("&serviceConnectionId={id}"));
        }
        url
    }

    async fn oidctoken(&self, connection: Option<&str>, job_token: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.oidctoken_url(ORG, connection))
            .bearer_auth(job_token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        body(response).await
    }

    async fn id_token(&self, connection: Option<&str>) -> String {
        let (status, answer) = self.oidctoken(connection, JOB_TOKEN).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["oidcToken"].as_str().unwrap().to_string()
    }

    fn entra_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.base)
    }

    async fn entra(&self, tenant: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.entra_url(tenant))
            .form(form)
            .send()
            .await
            .unwrap();
        body(response).await
    }

    async fn entra_assertion(&self, client_id: &str, assertion: &str) -> (StatusCode, Value) {
        self.entra(
            TENANT,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("scope", DATABRICKS_SCOPE),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion),
            ],
        )
        .await
    }

    async fn entra_secret(
        &self,
        client_id: &str,
        secret: &str,
        scope: &str,
    ) -> (StatusCode, Value) {
        self.entra(
            TENANT,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("scope", scope),
                ("client_secret", secret),
            ],
        )
        .await
    }

    async fn access_token(&self, client_id: &str, secret: &str, scope: &str) -> String {
        let (status, answer) = self.entra_secret(client_id, secret, scope).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["access_token"].as_str().unwrap().to_string()
    }

    /// The instance metadata route's answer to a request for an Azure Databricks token, with
    /// the `Metadata: true` header it wants.
    async fn imds_databricks_token(&self) -> (StatusCode, Value) {
        let url = format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={AZURE_DATABRICKS_RESOURCE}",
            self.base
        );
        body(
            self.http
                .get(&url)
                .header("Metadata", "true")
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// `GET /api/2.0/workspace/get-status?path=/` with `token` and extra headers.
    async fn workspace(&self, token: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut request = self
            .http
            .get(format!("{}/api/2.0/workspace/get-status?path=/", self.base))
            .bearer_auth(token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        body(request.send().await.unwrap()).await
    }

    async fn summary(&self) -> Value {
        let response = self
            .http
            .get(format!("{}/emulator/identities", self.base))
            .bearer_auth(PAT)
            .send()
            .await
            .unwrap();
        let (status, answer) = body(response).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    /// A certificate assertion for `client_id`, signed with `key_pem`'s key, naming the
    /// certificate of `x5t_pem`.
    fn certificate_assertion(&self, key_pem: &str, x5t_pem: &str, aud: &str, exp: u64) -> String {
        let cert = cert::Certificate::from_pem(x5t_pem).unwrap();
        let now = self.identity().clock.now_secs();
        sign_assertion(
            key_pem,
            &json!({"alg": "RS256", "typ": "JWT", "x5t": cert.x5t}),
            &json!({
                "aud": aud, "iss": CERT_APP, "sub": CERT_APP, "jti": random::guid(),
                "nbf": now, "iat": now, "exp": exp,
            }),
        )
    }
}

fn aadsts(answer: &Value) -> (u64, &str, &str) {
    (
        answer["error_codes"][0].as_u64().unwrap(),
        answer["error"].as_str().unwrap(),
        answer["error_description"].as_str().unwrap(),
    )
}

// --- Azure DevOps ---------------------------------------------------------------------------

#[tokio::test]
async fn devops_issues_a_fresh_id_token_per_request() {
    let fixture = start(identities()).await;
    let first = fixture.id_token(Some(CONNECTION)).await;
    let second = fixture.id_token(Some(CONNECTION)).await;
    assert_ne!(first, second);
    let jwt = Jwt::parse(&first).unwrap();
    assert_eq!(
        jwt.claim_str("iss"),
        Some(format!("https://vstoken.dev.azure.com/{ORG_ID}").as_str())
    );
    assert_eq!(jwt.audiences(), ["api://AzureADTokenExchange"]);
    assert_eq!(
        jwt.claim_str("sub"),
        Some("sc://contoso/data/databricks-prod")
    );
    let iat = jwt.claim_secs("iat").unwrap();
    assert_eq!(jwt.claim_secs("nbf"), Some(iat));
    assert_eq!(jwt.claim_secs("exp"), Some(iat + 600));
    assert!(jwt.claim_str("jti").is_some());

    let pipeline = Jwt::parse(&fixture.id_token(None).await).unwrap();
    assert_eq!(pipeline.claim_str("sub"), Some("p://contoso/data/ci"));

    assert_eq!(fixture.emulator.tokens_issued()["devops"], 3);
    let counts = fixture.emulator.request_counts();
    assert_eq!(
        counts["POST /{organization}/{project}/_apis/distributedtask/hubs/{hub}/plans/{plan}/jobs/{job}/oidctoken"],
        3,
        "{counts:?}"
    );
}

#[tokio::test]
async fn devops_refuses_a_wrong_job_token_with_a_bare_401() {
    let fixture = start(identities()).await;
    let (status, answer) = fixture
        .oidctoken(Some(CONNECTION), "not-the-job-token")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer, Value::Null);
    let response = fixture
        .http
        .post(fixture.oidctoken_url(ORG, None))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(fixture.emulator.tokens_issued()["devops"], 0);
}

#[tokio::test]
async fn devops_answers_200_without_a_token_for_a_connection_the_job_does_not_reference() {
    let fixture = start(identities()).await;
    for connection in [HIDDEN_CONNECTION, "00000000-0000-0000-0000-000000000000"] {
        let (status, answer) = fixture.oidctoken(Some(connection), JOB_TOKEN).await;
        assert_eq!(status, StatusCode::OK);
        assert!(answer.get("oidcToken").is_none(), "{answer}");
        let value = answer["value"].as_str().unwrap();
        assert!(
            value.starts_with(&format!(
                "There is no explicit reference to service connection {connection}"
            )),
            "{value}"
        );
        assert_eq!(answer["count"], value.len());
    }
}

#[tokio::test]
async fn devops_wants_a_preview_api_version_and_its_own_organization() {
    let fixture = start(identities()).await;
    let url = fixture
        .oidctoken_url(ORG, None)
        .replace("?api-version=7.1-preview.1", "");
    let (status, answer) = body(
        fixture
            .http
            .post(url)
            .bearer_auth(JOB_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["typeKey"], "VssVersionNotSpecifiedException");
    assert_eq!(answer["$id"], "1");
    assert_eq!(answer["eventId"], 3000);

    let url = fixture
        .oidctoken_url(ORG, None)
        .replace("7.1-preview.1", "7.1");
    let (status, answer) = body(
        fixture
            .http
            .post(url)
            .bearer_auth(JOB_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["typeKey"], "VssInvalidPreviewVersionException");

    let response = fixture
        .http
        .post(fixture.oidctoken_url("fabrikam", None))
        .bearer_auth(JOB_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

// --- Entra: workload identity federation ----------------------------------------------------

#[tokio::test]
async fn entra_exchanges_an_id_token_and_the_workspace_accepts_the_result() {
    let fixture = start(identities()).await;
    let id_token = fixture.id_token(Some(CONNECTION)).await;
    let (status, answer) = fixture.entra_assertion(WIF_APP, &id_token).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 3600);
    assert_eq!(answer["ext_expires_in"], 3600);
    let token = answer["access_token"].as_str().unwrap();
    let claims = Jwt::parse(token).unwrap();
    assert_eq!(claims.audiences(), [AZURE_DATABRICKS_RESOURCE]);
    assert_eq!(claims.claim_str("appid"), Some(WIF_APP));

    let (status, answer) = fixture.workspace(token, &[]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(fixture.emulator.tokens_issued()["entra"], 1);
    let counts = fixture.emulator.request_counts();
    assert_eq!(counts["POST /{tenant}/oauth2/v2.0/token"], 1, "{counts:?}");
}

#[tokio::test]
async fn entra_refuses_an_id_token_whose_subject_no_credential_names() {
    let fixture = start(identities()).await;
    // Asked without serviceConnectionId: subject p://…, the credential names sc://….
    let id_token = fixture.id_token(None).await;
    let (status, answer) = fixture.entra_assertion(WIF_APP, &id_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (code, error, description) = aadsts(&answer);
    assert_eq!((code, error), (700213, "invalid_client"));
    assert!(
        description.starts_with(
            "AADSTS700213: No matching federated identity record found for presented assertion subject 'p://contoso/data/ci'. Check your federated identity credential Subject, Audience and Issuer"
        ),
        "{description}"
    );
    for field in ["trace_id", "correlation_id", "timestamp"] {
        let value = answer[field].as_str().unwrap();
        assert!(
            description.contains(value),
            "{field} {value} in {description}"
        );
    }
}

#[tokio::test]
async fn entra_refuses_the_id_token_of_another_organization() {
    let fixture = start(identities()).await;
    let now = fixture.identity().clock.now_secs();
    let foreign = fixture.identity().sign_id_token(&json!({
        "iss": "https://vstoken.dev.azure.com/00000000-aaaa-4bbb-8ccc-000000000000",
        "sub": "sc://contoso/data/databricks-prod",
        "aud": TOKEN_EXCHANGE_AUDIENCE,
        "iat": now, "nbf": now, "exp": now + 600,
    }));
    let (status, answer) = fixture.entra_assertion(WIF_APP, &foreign).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (code, _, description) = aadsts(&answer);
    assert_eq!(code, 700211);
    assert!(
        description.contains("00000000-aaaa-4bbb-8ccc-000000000000"),
        "{description}"
    );
}

#[tokio::test]
async fn entra_refuses_a_forged_or_expired_id_token() {
    let fixture = start(identities()).await;
    let id_token = fixture.id_token(Some(CONNECTION)).await;
    // Same claims, signed with a key that is not the emulator's.
    let claims = Value::Object(Jwt::parse(&id_token).unwrap().claims);
    let other_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &random::bytes::<32>());
    let forged = jwt::encode_hs256(&other_key, &claims);
    let (status, answer) = fixture.entra_assertion(WIF_APP, &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(aadsts(&answer).0, 700027);

    fixture
        .emulator
        .advance_identity_clock(Duration::from_secs(601));
    let (status, answer) = fixture.entra_assertion(WIF_APP, &id_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (code, _, description) = aadsts(&answer);
    assert_eq!(code, 700024);
    assert!(
        description.contains("Client assertion is not within its valid time range. Current time: "),
        "{description}"
    );
}

// --- Entra: client secret and request errors ------------------------------------------------

#[tokio::test]
async fn entra_checks_the_client_secret() {
    let fixture = start(identities()).await;
    let (status, answer) = fixture
        .entra_secret(SECRET_APP, "app-secret", DATABRICKS_SCOPE)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let (status, answer) = fixture
        .entra_secret(SECRET_APP, "wrong", DATABRICKS_SCOPE)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (code, error, description) = aadsts(&answer);
    assert_eq!((code, error), (7000215, "invalid_client"));
    assert!(description.contains(&format!("for a secret added to app '{SECRET_APP}'")));

    let (status, answer) = fixture
        .entra_secret(EXPIRED_APP, "old", DATABRICKS_SCOPE)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (code, _, description) = aadsts(&answer);
    assert_eq!(code, 7000222);
    assert!(description.contains("are expired"), "{description}");
}

#[tokio::test]
async fn entra_refuses_unknown_tenants_applications_and_scopes() {
    let fixture = start(identities()).await;
    let (status, answer) = fixture
        .entra(
            "00000000-0000-0000-0000-00000000dead",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", SECRET_APP),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (code, error, description) = aadsts(&answer);
    assert_eq!((code, error), (90002, "invalid_tenant"));
    assert!(description.contains("Tenant '00000000-0000-0000-0000-00000000dead' not found."));

    let (status, answer) = fixture
        .entra_secret(
            "99999999-9999-4999-8999-999999999999",
            "x",
            DATABRICKS_SCOPE,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (code, error, description) = aadsts(&answer);
    assert_eq!((code, error), (700016, "unauthorized_client"));
    assert!(description.contains(&format!(
        "Application with identifier '99999999-9999-4999-8999-999999999999' was not found in the directory '{TENANT}'"
    )));

    let (status, answer) = fixture
        .entra_secret(
            SECRET_APP,
            "app-secret",
            "https://graph.microsoft.com/User.Read",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(aadsts(&answer).0, 70011);
    assert_eq!(answer["error"], "invalid_scope");

    let (status, answer) = fixture
        .entra(
            TENANT,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", SECRET_APP),
                ("scope", DATABRICKS_SCOPE),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(aadsts(&answer).0, 7000216);
    assert_eq!(fixture.emulator.tokens_issued()["entra"], 0);
}

// --- Entra: certificate assertions ----------------------------------------------------------

#[tokio::test]
async fn entra_accepts_an_assertion_signed_with_the_registered_certificate() {
    let fixture = start(identities()).await;
    let exp = fixture.identity().clock.now_secs() + 600;
    let aud = fixture.entra_url(TENANT);
    let assertion =
        fixture.certificate_assertion(TEST_CERTIFICATE_PEM, TEST_CERTIFICATE_PEM, &aud, exp);
    let (status, answer) = fixture.entra_assertion(CERT_APP, &assertion).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, _) = fixture
        .workspace(answer["access_token"].as_str().unwrap(), &[])
        .await;
    assert_eq!(status, StatusCode::OK);

    // Named by its SHA-256 thumbprint instead.
    let cert = cert::Certificate::from_pem(TEST_CERTIFICATE_PEM).unwrap();
    let now = fixture.identity().clock.now_secs();
    let assertion = sign_assertion(
        TEST_CERTIFICATE_PEM,
        &json!({"alg": "RS256", "x5t#S256": cert.x5t_s256}),
        &json!({"aud": aud, "iss": CERT_APP, "sub": CERT_APP, "jti": "j", "nbf": now, "exp": now + 60}),
    );
    let (status, answer) = fixture.entra_assertion(CERT_APP, &assertion).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn entra_refuses_assertions_signed_with_another_key() {
    let fixture = start(identities()).await;
    let exp = fixture.identity().clock.now_secs() + 600;
    let aud = fixture.entra_url(TENANT);
    // Another key, claiming to be the registered certificate.
    let forged =
        fixture.certificate_assertion(OTHER_TEST_CERTIFICATE_PEM, TEST_CERTIFICATE_PEM, &aud, exp);
    let (status, answer) = fixture.entra_assertion(CERT_APP, &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (code, error, description) = aadsts(&answer);
    assert_eq!((code, error), (700027, "invalid_client"));
    assert!(
        description.contains("Client assertion contains an invalid signature."),
        "{description}"
    );
    assert!(
        description.contains("D7CEB1389D3DA5CAAA5DD127102244778F851E2C"),
        "{description}"
    );

    // Another certificate altogether: its key is not registered.
    let unknown = fixture.certificate_assertion(
        OTHER_TEST_CERTIFICATE_PEM,
        OTHER_TEST_CERTIFICATE_PEM,
        &aud,
        exp,
    );
    let (status, answer) = fixture.entra_assertion(CERT_APP, &unknown).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (code, _, description) = aadsts(&answer);
    assert_eq!(code, 700027);
    assert!(
        description.contains("[Reason - The key was not found."),
        "{description}"
    );
}

#[tokio::test]
async fn entra_refuses_expired_or_misaddressed_certificate_assertions() {
    let fixture = start(identities()).await;
    let now = fixture.identity().clock.now_secs();
    let aud = fixture.entra_url(TENANT);
    let expired =
        fixture.certificate_assertion(TEST_CERTIFICATE_PEM, TEST_CERTIFICATE_PEM, &aud, now - 1);
    let (status, answer) = fixture.entra_assertion(CERT_APP, &expired).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(aadsts(&answer).0, 700024);

    let elsewhere = fixture.certificate_assertion(
        TEST_CERTIFICATE_PEM,
        TEST_CERTIFICATE_PEM,
        "https://login.example.com/token",
        now + 600,
    );
    let (status, answer) = fixture.entra_assertion(CERT_APP, &elsewhere).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(aadsts(&answer).0, 50012);
}

// --- The workspace: which tokens it accepts -------------------------------------------------

#[tokio::test]
async fn the_workspace_refuses_management_tokens_and_id_tokens() {
    let fixture = start(identities()).await;
    let management = fixture
        .access_token(SECRET_APP, "app-secret", MANAGEMENT_SCOPE)
        .await;
    assert_eq!(
        Jwt::parse(&management).unwrap().audiences(),
        [MANAGEMENT_RESOURCE]
    );
    let (status, answer) = fixture.workspace(&management, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["message"], "Invalid access token.");

    let id_token = fixture.id_token(Some(CONNECTION)).await;
    let (status, _) = fixture.workspace(&id_token, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A Databricks token is no Entra assertion either.
    let (status, _) = fixture.entra_assertion(WIF_APP, &management).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_workspace_refuses_expired_and_nearly_expired_tokens() {
    let fixture = start(identities()).await;
    let id_token = fixture.id_token(Some(CONNECTION)).await;
    let (_, answer) = fixture.entra_assertion(WIF_APP, &id_token).await;
    let token = answer["access_token"].as_str().unwrap();

    fixture
        .emulator
        .advance_identity_clock(Duration::from_secs(3600 - 31));
    assert_eq!(fixture.workspace(token, &[]).await.0, StatusCode::OK);
    fixture
        .emulator
        .advance_identity_clock(Duration::from_secs(2));
    let (status, answer) = fixture.workspace(token, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer["message"],
        "Token is expiring within 30 seconds. (token expired)"
    );
    fixture
        .emulator
        .advance_identity_clock(Duration::from_secs(30));
    let (status, answer) = fixture.workspace(token, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["error_code"], "UNAUTHENTICATED");
    assert_eq!(answer["message"], "Token is expired");
}

#[tokio::test]
async fn a_one_second_token_expires_a_second_later() {
    let fixture = start(identities().with_token_lifetime(1)).await;
    let (_, answer) = fixture.imds_databricks_token().await;
    assert_eq!(answer["expires_in"], "1");
    let token = answer["access_token"].as_str().unwrap();
    assert_eq!(fixture.workspace(token, &[]).await.0, StatusCode::OK);
    fixture
        .emulator
        .advance_identity_clock(Duration::from_secs(1));
    let (status, answer) = fixture.workspace(token, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["message"], "Token is expired");
}

#[tokio::test]
async fn a_contributor_is_added_on_first_use_with_a_management_token() {
    let fixture = start(identities()).await;
    let token = fixture
        .access_token(SECRET_APP, "app-secret", DATABRICKS_SCOPE)
        .await;
    let (status, answer) = fixture.workspace(&token, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["message"], "User not authorized.");

    let management = fixture
        .access_token(SECRET_APP, "app-secret", MANAGEMENT_SCOPE)
        .await;
    // The wrong workspace, then a management token of someone else: still refused.
    let other_management = fixture
        .access_token(OUTSIDER_APP, "outsider-secret", MANAGEMENT_SCOPE)
        .await;
    for (resource, management) in [
        ("/subscriptions/0001/resourceGroups/data/providers/Microsoft.Databricks/workspaces/other", management.as_str()),
        (RESOURCE_ID, other_management.as_str()),
        (RESOURCE_ID, token.as_str()),
    ] {
        let headers = [
            ("X-Databricks-Azure-Workspace-Resource-Id", resource),
            ("X-Databricks-Azure-SP-Management-Token", management),
        ];
        assert_eq!(fixture.workspace(&token, &headers).await.0, StatusCode::FORBIDDEN);
    }
    assert!(fixture.summary().await["added_principals"]
        .as_array()
        .unwrap()
        .is_empty());

    let headers = [
        (
            "X-Databricks-Azure-Workspace-Resource-Id",
            &*RESOURCE_ID.to_lowercase(),
        ),
        (
            "X-Databricks-Azure-SP-Management-Token",
            management.as_str(),
        ),
    ];
    let (status, answer) = fixture.workspace(&token, &headers).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Remembered: the next request needs no management token.
    assert_eq!(fixture.workspace(&token, &[]).await.0, StatusCode::OK);
    let summary = fixture.summary().await;
    assert_eq!(summary["added_principals"], json!([SECRET_APP]));
    assert_eq!(summary["tokens_issued"]["entra"], 3);
    assert_eq!(summary["live_tokens"]["entra"], 3);
    assert!(fixture
        .emulator
        .workspace_principals()
        .contains(&SECRET_APP.to_string()));
}

#[tokio::test]
async fn an_application_without_contributor_is_never_added() {
    let fixture = start(identities()).await;
    let token = fixture
        .access_token(OUTSIDER_APP, "outsider-secret", DATABRICKS_SCOPE)
        .await;
    let management = fixture
        .access_token(OUTSIDER_APP, "outsider-secret", MANAGEMENT_SCOPE)
        .await;
    let headers = [
        ("X-Databricks-Azure-Workspace-Resource-Id", RESOURCE_ID),
        (
            "X-Databricks-Azure-SP-Management-Token",
            management.as_str(),
        ),
    ];
    assert_eq!(
        fixture.workspace(&token, &headers).await.0,
        StatusCode::FORBIDDEN
    );
    assert!(!fixture
        .emulator
        .workspace_principals()
        .contains(&OUTSIDER_APP.to_string()));
}

// --- Workspace OAuth ------------------------------------------------------------------------

#[tokio::test]
async fn workspace_oauth_discovery_names_the_host_asked() {
    let fixture = start(identities()).await;
    let response = fixture
        .http
        .get(format!(
            "{}/oidc/.well-known/oauth-authorization-server",
            fixture.base
        ))
        .header("Host", "adb-123.azuredatabricks.net:443")
        .send()
        .await
        .unwrap();
    let (status, answer) = body(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer["issuer"],
        "http://adb-123.azuredatabricks.net:443/oidc"
    );
    let (_, answer) = body(
        fixture
            .http
            .get(format!(
                "{}/oidc/.well-known/oauth-authorization-server",
                fixture.base
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        answer["token_endpoint"],
        format!("{}/oidc/v1/token", fixture.base)
    );
    assert!(answer["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("client_credentials")));
}

#[tokio::test]
async fn workspace_oauth_machine_to_machine() {
    let fixture = start(identities()).await;
    let url = format!("{}/oidc/v1/token", fixture.base);
    let form = [("grant_type", "client_credentials"), ("scope", "all-apis")];
    let (status, answer) = body(
        fixture
            .http
            .post(&url)
            .basic_auth(OAUTH_SP, Some("oauth-secret"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 3600);
    assert_eq!(answer["scope"], "all-apis");
    let token = answer["access_token"].as_str().unwrap();
    assert_eq!(fixture.workspace(token, &[]).await.0, StatusCode::OK);

    // The secret in the form works too; a wrong one does not.
    let in_form = [
        ("grant_type", "client_credentials"),
        ("scope", "all-apis"),
        ("client_id", OAUTH_SP),
        ("client_secret", "oauth-secret"),
    ];
    let (status, _) = body(fixture.http.post(&url).form(&in_form).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = body(
        fixture
            .http
            .post(&url)
            .basic_auth(OAUTH_SP, Some("wrong"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer,
        json!({"error": "invalid_client", "error_description": "Client authentication failed"})
    );
    assert_eq!(fixture.emulator.tokens_issued()["workspace_oauth"], 2);
}

#[tokio::test]
async fn workspace_oauth_token_exchange_follows_the_federation_policy() {
    let fixture = start(identities()).await;
    let url = format!("{}/oidc/v1/token", fixture.base);
    let exchange = |subject_token: String, client_id: &'static str| {
        let request = fixture.http.post(&url).form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", subject_token.as_str()),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ("client_id", client_id),
            ("scope", "all-apis"),
        ]);
        async move { body(request.send().await.unwrap()).await }
    };
    let pipeline_token = fixture.id_token(None).await;
    let (status, answer) = exchange(pipeline_token.clone(), FEDERATED_SP).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let token = answer["access_token"].as_str().unwrap();
    assert_eq!(fixture.workspace(token, &[]).await.0, StatusCode::OK);

    // The policy names p://…: an sc://… token, or another service principal, does not match.
    let (status, answer) = exchange(fixture.id_token(Some(CONNECTION)).await, FEDERATED_SP).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"], "invalid_request");
    assert!(answer["error_description"]
        .as_str()
        .unwrap()
        .contains("sc://contoso/data/databricks-prod"));
    let (status, _) = exchange(pipeline_token.clone(), OAUTH_SP).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    fixture
        .emulator
        .advance_identity_clock(Duration::from_secs(600));
    let (status, answer) = exchange(pipeline_token, FEDERATED_SP).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error_description"]
        .as_str()
        .unwrap()
        .contains("expired"));
    assert_eq!(fixture.emulator.tokens_issued()["workspace_oauth"], 1);
}

// --- Managed identity -----------------------------------------------------------------------

#[tokio::test]
async fn imds_answers_with_the_metadata_header_only() {
    let fixture = start(identities()).await;
    let url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={AZURE_DATABRICKS_RESOURCE}",
        fixture.base
    );
    let (status, answer) = body(fixture.http.get(&url).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer["error_description"],
        "Required metadata header not specified"
    );

    let (status, answer) = body(
        fixture
            .http
            .get(&url)
            .header("Metadata", "true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["client_id"], MANAGED);
    assert_eq!(answer["expires_in"], "3600");
    assert_eq!(answer["resource"], AZURE_DATABRICKS_RESOURCE);
    let expires_on: u64 = answer["expires_on"].as_str().unwrap().parse().unwrap();
    let not_before: u64 = answer["not_before"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires_on, not_before + 3600);
    let token = answer["access_token"].as_str().unwrap();
    assert_eq!(fixture.workspace(token, &[]).await.0, StatusCode::OK);

    let (status, answer) = body(
        fixture
            .http
            .get(format!(
                "{url}&client_id=00000000-0000-0000-0000-000000000009"
            ))
            .header("Metadata", "true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error_description"], "Identity not found");
    let (status, answer) = body(
        fixture
            .http
            .get(format!("{url}&client_id={MANAGED}"))
            .header("Metadata", "true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(fixture.emulator.tokens_issued()["imds"], 2);
}

#[tokio::test]
async fn app_service_endpoint_wants_the_identity_header() {
    let fixture = start(identities()).await;
    let url = format!(
        "{}/msi/token?api-version=2019-08-01&resource=https://management.core.windows.net/",
        fixture.base
    );
    let (status, _) = body(
        fixture
            .http
            .get(&url)
            .header("X-IDENTITY-HEADER", "wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, answer) = body(
        fixture
            .http
            .get(&url)
            .header("X-IDENTITY-HEADER", "identity-header")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // A management token is not a workspace token.
    let token = answer["access_token"].as_str().unwrap();
    assert_eq!(fixture.workspace(token, &[]).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn without_a_managed_identity_imds_finds_none() {
    let mut config = identities();
    config.managed_identity = None;
    let fixture = start(config).await;
    let url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={AZURE_DATABRICKS_RESOURCE}",
        fixture.base
    );
    let (status, answer) = body(
        fixture
            .http
            .get(&url)
            .header("Metadata", "true")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer,
        json!({"error": "invalid_request", "error_description": "Identity not found"})
    );
    // Nor is there an App Service endpoint.
    let url = url.replace("/metadata/identity/oauth2/token", "/msi/token");
    let (status, _) = body(fixture.http.get(&url).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// --- Without identities, and the control route ----------------------------------------------

#[tokio::test]
async fn without_identities_nothing_changes() {
    let fixture = start(Identities::default()).await;
    let (status, answer) = fixture
        .entra(TENANT, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["error_code"], "ENDPOINT_NOT_FOUND");
    let (status, answer) = fixture.workspace("some-token", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(answer["message"], "Invalid access token.");
    assert_eq!(fixture.workspace(PAT, &[]).await.0, StatusCode::OK);
    let summary = fixture.summary().await;
    assert_eq!(summary["tokens_issued"]["entra"], 0);
    assert_eq!(summary["principals"], json!([]));
}

#[tokio::test]
async fn the_summary_wants_the_workspace_token() {
    let fixture = start(identities()).await;
    let response = fixture
        .http
        .get(format!("{}/emulator/identities", fixture.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let summary = fixture.summary().await;
    assert_eq!(summary["principals"], json!([WIF_APP, CERT_APP, MANAGED]));
    assert_eq!(
        summary["tokens_issued"],
        json!({"devops": 0, "entra": 0, "imds": 0, "workspace_oauth": 0})
    );
}

#[tokio::test]
async fn faults_reach_the_token_endpoints_by_their_counted_name() {
    let fixture = start(identities()).await;
    fixture
        .emulator
        .set_faults(vec!["POST /{tenant}/oauth2/v2.0/token=503*1"
            .parse()
            .unwrap()]);
    let (status, _) = fixture
        .entra_secret(SECRET_APP, "app-secret", DATABRICKS_SCOPE)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = fixture
        .entra_secret(SECRET_APP, "app-secret", DATABRICKS_SCOPE)
        .await;
    assert_eq!(status, StatusCode::OK);
}

// --- Control routes -------------------------------------------------------------------------

/// A token an identity party hands out (here to anyone sending `Metadata: true`) opens the
/// API, as on a workspace, but never the emulator's control routes: they take its own token.
#[tokio::test]
async fn control_routes_take_only_the_emulators_own_token() {
    let fixture = start(identities()).await;
    // What the instance metadata route hands anyone who asks with `Metadata: true`.
    let (status, answer) = fixture.imds_databricks_token().await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let issued = answer["access_token"].as_str().unwrap().to_string();
    assert_eq!(fixture.workspace(&issued, &[]).await.0, StatusCode::OK);
    for (method, route) in [
        (reqwest::Method::GET, "/emulator/runs"),
        (reqwest::Method::GET, "/emulator/requests"),
        (reqwest::Method::GET, "/emulator/identities"),
        (reqwest::Method::PUT, "/emulator/faults"),
        (reqwest::Method::POST, "/emulator/requests/reset"),
    ] {
        let with = |token: &str| {
            fixture
                .http
                .request(method.clone(), format!("{}{route}", fixture.base))
                .bearer_auth(token)
                .body("[]")
                .send()
        };
        assert_eq!(
            with(&issued).await.unwrap().status(),
            StatusCode::FORBIDDEN,
            "{route}"
        );
        assert_eq!(with(PAT).await.unwrap().status(), StatusCode::OK, "{route}");
    }
}
