//! Upstream logins in progress: recorded by `/authorize`, consumed once
//! by `/callback`.

use super::protocol::{BeginLogin, Done, FinishLogin, LoginReply, Reason, Refusal, Refused};
use super::records::{LoginRecord, StorageKey};
use super::store::{LedgerStore, load, put};
use crate::ports::StorageError;

pub async fn begin<S: LedgerStore>(store: &S, m: BeginLogin) -> Result<Done, StorageError> {
    store
        .commit(vec![put(&StorageKey::Login(m.login_id), &m.record)?])
        .await?;
    Ok(Done::Done)
}

/// The login, once; a second finish is a replay.
pub async fn finish<S: LedgerStore>(
    store: &S,
    m: FinishLogin,
    now: u64,
) -> Result<LoginReply, StorageError> {
    let refused = |reason| {
        Ok(LoginReply::Refused(Refused::new(
            Refusal::InvalidGrant,
            reason,
        )))
    };
    let key = StorageKey::Login(m.login_id);
    let Some(mut record) = load::<LoginRecord, _>(store, &key).await? else {
        return refused(Reason::UnknownLogin);
    };
    if record.used {
        return refused(Reason::LoginReplayed);
    }
    if now >= record.expires_at {
        return refused(Reason::LoginExpired);
    }
    record.used = true;
    store.commit(vec![put(&key, &record)?]).await?;
    Ok(LoginReply::Login {
        record: Box::new(record),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::test_world::*;
    use super::*;
    use crate::oauth::authorize::AuthorizationRequest;
    use crate::oauth::ids::LoginId;
    use crate::oauth::types::{CodeChallenge, RedirectUri, ScopeSet, State};
    use crate::secret::{LoginNonce, PkceVerifier};
    use crate::testing::block_on;

    pub fn login_record(now: u64) -> LoginRecord {
        LoginRecord {
            request: AuthorizationRequest {
                client_id: client(),
                redirect_uri: RedirectUri::parse("https://a.example/cb").unwrap(),
                redirect_uri_given: true,
                state: State::parse("s"),
                scope: ScopeSet::parse(None).unwrap(),
                code_challenge: CodeChallenge::parse(CHALLENGE).unwrap(),
                resource: resource(RESOURCE),
            },
            upstream_verifier: PkceVerifier::new("v"),
            nonce: LoginNonce::new("n"),
            expires_at: now + 600,
            used: false,
        }
    }

    #[test]
    fn logins_finish_once_and_expire() {
        let w = World::new();
        let record = login_record(w.now());
        let begin_as = |id: &str, record: LoginRecord| {
            block_on(begin(
                &w.store,
                BeginLogin {
                    login_id: LoginId::fixed(id),
                    record,
                },
            ))
            .unwrap()
        };
        let finish_as = |id: &str| {
            block_on(finish(
                &w.store,
                FinishLogin {
                    login_id: LoginId::fixed(id),
                },
                w.now(),
            ))
            .unwrap()
        };
        begin_as("l1", record.clone());
        assert_eq!(
            finish_as("l1"),
            LoginReply::Login {
                record: Box::new(LoginRecord {
                    used: true,
                    ..record.clone()
                })
            }
        );
        assert!(matches!(finish_as("l1"), LoginReply::Refused(_)));
        assert!(matches!(finish_as("nope"), LoginReply::Refused(_)));
        begin_as("l2", record);
        w.advance(600);
        assert!(matches!(finish_as("l2"), LoginReply::Refused(_)));
    }
}
