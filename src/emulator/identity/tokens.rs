//! Every access token the parties issued: token → (party, audience, client id, lifetime), and
//! how many each party issued. A token is valid only if it is in here: its JWT form is for
//! clients that peek at claims, not a credential the emulator trusts by signature.

use std::collections::{BTreeMap, HashMap};

use ring::hmac;
use serde_json::json;

use super::jwt;
use super::random;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Party {
    DevOps,
    Entra,
    Imds,
    WorkspaceOAuth,
}

impl Party {
    pub const ALL: [Party; 4] = [
        Party::DevOps,
        Party::Entra,
        Party::Imds,
        Party::WorkspaceOAuth,
    ];

    /// Its name in `GET /emulator/identities` and [`crate::emulator::Emulator::tokens_issued`].
    pub fn name(self) -> &'static str {
        match self {
            Party::DevOps => "devops",
            Party::Entra => "entra",
            Party::Imds => "imds",
            Party::WorkspaceOAuth => "workspace_oauth",
        }
    }
}

/// What a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Audience {
    /// An Entra token for the Azure Databricks resource.
    AzureDatabricks,
    /// An Entra token for Azure Resource Manager.
    Management,
    /// A token of the workspace's own OAuth server.
    Workspace,
}

impl Audience {
    fn claim(self) -> &'static str {
        match self {
            Audience::AzureDatabricks => super::config::AZURE_DATABRICKS_RESOURCE,
            Audience::Management => super::config::MANAGEMENT_RESOURCE,
            Audience::Workspace => "workspace",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Issued {
    pub party: Party,
    pub audience: Audience,
    pub client_id: String,
    pub issued_at_ms: u64,
    pub expires_at_ms: u64,
}

/// Why a presented token is not live.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Unknown,
    Expired,
    /// Too little left (see [`TokenStore::check`]): `seconds` is the threshold.
    ExpiringWithin {
        seconds: u64,
    },
}

/// How long an expired token is remembered, to say "expired" rather than "invalid".
const REMEMBER_EXPIRED_MS: u64 = 3_600_000;

#[derive(Default)]
pub(crate) struct TokenStore {
    tokens: HashMap<String, Issued>,
    issued: BTreeMap<Party, u64>,
    /// Every token handed out, id tokens included, for tests that hunt for leaks.
    handed_out: Vec<String>,
}

pub(crate) struct Grant<'a> {
    pub party: Party,
    pub audience: Audience,
    pub client_id: &'a str,
    /// `iss` of the JWT form.
    pub issuer: &'a str,
    /// `tid` of the JWT form, when the issuer has tenants.
    pub tenant_id: Option<&'a str>,
    pub lifetime_secs: u64,
}

impl TokenStore {
    /// Issues a fresh token: random (its `jti`), distinct from every other, remembered.
    pub fn issue(&mut self, key: &hmac::Key, grant: &Grant<'_>, now_ms: u64) -> String {
        self.forget_old(now_ms);
        let now = now_ms / 1000;
        let exp = now + grant.lifetime_secs;
        let mut claims = json!({
            "aud": grant.audience.claim(),
            "iss": grant.issuer,
            "iat": now,
            "nbf": now,
            "exp": exp,
            "appid": grant.client_id,
            "sub": grant.client_id,
            "jti": random::guid(),
        });
        if let Some(tenant) = grant.tenant_id {
            claims["tid"] = tenant.into();
        }
        let token = jwt::encode_hs256(key, &claims);
        self.tokens.insert(
            token.clone(),
            Issued {
                party: grant.party,
                audience: grant.audience,
                client_id: grant.client_id.to_string(),
                issued_at_ms: now_ms,
                expires_at_ms: now_ms + grant.lifetime_secs * 1000,
            },
        );
        self.record(grant.party, &token);
        token
    }

    /// Counts a token, and keeps it in the list of those handed out (Azure DevOps id tokens
    /// are recorded only so: they are checked by signature, not looked up).
    pub fn record(&mut self, party: Party, token: &str) {
        *self.issued.entry(party).or_default() += 1;
        self.handed_out.push(token.to_string());
    }

    pub fn handed_out(&self) -> Vec<String> {
        self.handed_out.clone()
    }

    pub fn issued(&self) -> BTreeMap<&'static str, u64> {
        Party::ALL
            .iter()
            .map(|party| (party.name(), self.issued.get(party).copied().unwrap_or(0)))
            .collect()
    }

    /// Party → access tokens of it not yet expired (Azure DevOps id tokens are not stored).
    pub fn live(&self, now_ms: u64) -> BTreeMap<&'static str, u64> {
        let mut live: BTreeMap<&'static str, u64> =
            Party::ALL.iter().map(|party| (party.name(), 0)).collect();
        for issued in self.tokens.values() {
            if issued.expires_at_ms > now_ms {
                *live.entry(issued.party.name()).or_default() += 1;
            }
        }
        live
    }

    /// The token's record if it is live. Like Azure Databricks, a token with 1/120 of its
    /// lifetime or less left (30 s of an hour) is refused: clients must refresh before that.
    pub fn check(&self, token: &str, now_ms: u64) -> Result<&Issued, Refusal> {
        let issued = self.tokens.get(token).ok_or(Refusal::Unknown)?;
        if now_ms >= issued.expires_at_ms {
            return Err(Refusal::Expired);
        }
        let margin_ms = (issued.expires_at_ms - issued.issued_at_ms) / 120;
        if issued.expires_at_ms - now_ms <= margin_ms {
            return Err(Refusal::ExpiringWithin {
                seconds: margin_ms.div_ceil(1000),
            });
        }
        Ok(issued)
    }

    fn forget_old(&mut self, now_ms: u64) {
        self.tokens
            .retain(|_, issued| issued.expires_at_ms + REMEMBER_EXPIRED_MS > now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(lifetime_secs: u64) -> Grant<'static> {
        Grant {
            party: Party::Entra,
            audience: Audience::AzureDatabricks,
            client_id: "app",
            issuer: "https://sts.windows.net/t/",
            tenant_id: Some("t"),
            lifetime_secs,
        }
    }

    fn key() -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &[7; 32])
    }

    #[test]
    fn tokens_are_distinct_and_counted() {
        let mut store = TokenStore::default();
        let a = store.issue(&key(), &grant(60), 1_000_000);
        let b = store.issue(&key(), &grant(60), 1_000_000);
        assert_ne!(a, b);
        assert_eq!(store.issued()["entra"], 2);
        assert_eq!(store.issued()["imds"], 0);
        let claims = jwt::Jwt::parse(&a).unwrap();
        assert_eq!(claims.claim_secs("exp"), Some(1_060));
        assert_eq!(claims.claim_str("tid"), Some("t"));
    }

    #[test]
    fn an_hour_token_is_refused_in_its_last_30_seconds() {
        let mut store = TokenStore::default();
        let start = 5_000_000;
        let token = store.issue(&key(), &grant(3600), start);
        assert!(store.check(&token, start).is_ok());
        assert!(store.check(&token, start + 3_569_999).is_ok());
        assert_eq!(
            store.check(&token, start + 3_570_000).unwrap_err(),
            Refusal::ExpiringWithin { seconds: 30 }
        );
        assert_eq!(
            store.check(&token, start + 3_600_000).unwrap_err(),
            Refusal::Expired
        );
        assert_eq!(store.check("other", start).unwrap_err(), Refusal::Unknown);
    }

    #[test]
    fn a_one_second_token_expires_after_one_second() {
        let mut store = TokenStore::default();
        let token = store.issue(&key(), &grant(1), 0);
        assert!(store.check(&token, 500).is_ok());
        assert_eq!(store.live(500)["entra"], 1);
        assert_eq!(store.check(&token, 1_000).unwrap_err(), Refusal::Expired);
        assert_eq!(store.live(1_000)["entra"], 0);
    }

    #[test]
    fn long_expired_tokens_are_forgotten() {
        let mut store = TokenStore::default();
        let old = store.issue(&key(), &grant(1), 0);
        store.issue(&key(), &grant(1), 2 * REMEMBER_EXPIRED_MS);
        assert_eq!(
            store.check(&old, 2 * REMEMBER_EXPIRED_MS).unwrap_err(),
            Refusal::Unknown
        );
    }
}
