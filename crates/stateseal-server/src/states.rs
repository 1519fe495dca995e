//! The state operations, in the domain's words: read, decide-and-append (uploads, deletions,
//! rollbacks), lock, unlock, roll back and list, over the [`Storage`] and the at-rest
//! encryption ([`AtRest`]). Every operation returns a typed [`ServerError`]; nothing here knows
//! HTTP (the protocol, the JSON API and the console map the result at their edge).

use std::sync::Arc;

use bytes::Bytes;
use stateseal_core::hex::sha256_hex;
use stateseal_core::{check_update, Content, Refusal, Snapshot, Successor};
use stateseal_store::lock_info::GoTime;
use stateseal_store::LockInfo;

use crate::at_rest::{AtRest, Incoming};
use crate::error::{Missing, Precondition, ServerError};
use crate::state_path::StatePath;
use crate::storage::{self, Page, Released, Storage, Stored, Taken, VersionRecord, Visible};

/// The state operations over one storage and one at-rest policy.
#[derive(Clone, Copy)]
pub struct States<'a> {
    pub storage: &'a dyn Storage,
    pub at_rest: &'a Arc<AtRest>,
}

/// `If-Match` and `If-None-Match: *` on an upload: optimistic concurrency for clients that want
/// it. The entity tag is the one GET answers: the SHA-256 of the bytes the client stored.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    pub if_match: Option<String>,
    pub if_none_match_any: bool,
}

impl Expected {
    /// Fails when the stored state is not the one the client expects.
    fn check(&self, live: Option<&VersionRecord>) -> Result<(), Precondition> {
        if self.if_none_match_any && live.is_some() {
            return Err(Precondition::StateExists);
        }
        if let Some(want) = &self.if_match {
            let current = live.map(|l| format!("\"{}\"", l.sha256));
            let matches = match (want.as_str(), &current) {
                (_, None) => false,
                ("*", Some(_)) => true,
                (w, Some(c)) => w.split(',').any(|t| t.trim().trim_start_matches("W/") == c),
            };
            if !matches {
                return Err(Precondition::Mismatch {
                    wanted: want.clone(),
                    current,
                });
            }
        }
        Ok(())
    }
}

/// One state as listings show it: its newest version (`None` when deleted) and its lock holder.
pub struct StateRow {
    pub path: StatePath,
    pub current: Option<VersionRecord>,
    pub lock: Option<LockInfo>,
    /// The key providers of the newest version's envelope, when the listing read them.
    pub providers: Option<Arc<[String]>>,
    /// Set when the state's records could not be read (the listing goes on without them).
    pub unreadable: bool,
}

/// A page of a listing: its rows, and where the next page starts (`None`: this is the last).
pub struct Listing {
    pub rows: Vec<StateRow>,
    pub next: Option<StatePath>,
}

impl StateRow {
    /// True when the lock record is unreadable ([`crate::storage::unreadable_lock`]).
    pub fn lock_unreadable(&self) -> bool {
        self.lock
            .as_ref()
            .is_some_and(|l| crate::storage::is_unreadable_lock_id(&l.id))
    }
}

/// What a rollback wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolledBack {
    pub seq: u64,
    pub serial: u64,
    pub lineage: String,
}

/// What to do, decided from the live version.
enum Decision<T> {
    /// Store `body` (what the client sent, or a rollback's rewrite) as the new version.
    /// `sha256` is its hex SHA-256, computed once by whoever made the body.
    Write {
        body: Bytes,
        sha256: String,
        incoming: Incoming,
        then: T,
    },
    /// Delete the state.
    Delete(T),
    /// Write nothing; this is the outcome.
    Done(Result<T, ServerError>),
}

/// How often a write is decided again because another writer (another server instance on
/// the same bucket) changed the state in between, before giving up.
const ATTEMPTS: usize = 8;

impl States<'_> {
    /// The live version's record and the bytes its client sent.
    pub async fn read(&self, path: &StatePath) -> Result<(VersionRecord, Bytes), ServerError> {
        let (record, stored) = self
            .storage
            .read_live(path)
            .await
            .map_err(ServerError::storage("reading the state failed"))?
            .ok_or(ServerError::NotFound(Missing::State))?;
        let bytes = self.open(stored, record.stored).await?;
        Ok((record, bytes))
    }

    /// Version `n`'s record and the bytes its client sent (plaintext unless the client
    /// encrypted).
    pub async fn version(
        &self,
        path: &StatePath,
        n: u64,
    ) -> Result<(VersionRecord, Bytes), ServerError> {
        let (record, stored) = self.stored(path, n).await?;
        if record.stored == Stored::Deleted {
            return Err(ServerError::NotFound(Missing::Deletion(n)));
        }
        let bytes = self.open(stored, record.stored).await?;
        Ok((record, bytes))
    }

    /// Version `n`'s record and bytes as stored (an envelope when encrypted).
    pub async fn stored(
        &self,
        path: &StatePath,
        n: u64,
    ) -> Result<(VersionRecord, Bytes), ServerError> {
        self.storage
            .version(path, n)
            .await
            .map_err(ServerError::storage("reading the version failed"))?
            .ok_or(ServerError::NotFound(Missing::Version(n)))
    }

    /// Every kept version, newest first.
    pub async fn versions(&self, path: &StatePath) -> Result<Vec<VersionRecord>, ServerError> {
        self.storage
            .versions(path)
            .await
            .map_err(ServerError::storage("reading the versions failed"))
    }

    /// The lock holder, if the state is locked.
    pub async fn lock_holder(&self, path: &StatePath) -> Result<Option<LockInfo>, ServerError> {
        self.storage
            .lock_holder(path)
            .await
            .map_err(ServerError::storage("reading the lock failed"))
    }

    /// What the client stored, from stored bytes (decrypted on the blocking pool when the
    /// server encrypted them). Bytes that need no key take the same hop although it does no
    /// work: skipping it was measured to cut client-envelope GETs at c=8 from about 2,200 to
    /// 1,500 req/s (`scripts/bench/serve.sh`, issue 20), so the hop stays.
    async fn open(&self, stored: Bytes, how: Stored) -> Result<Bytes, ServerError> {
        let at_rest = self.at_rest.clone();
        tokio::task::spawn_blocking(move || at_rest.open(stored, how))
            .await
            .map_err(ServerError::join("reading the state failed"))?
            .map_err(|e| ServerError::at_rest("reading the state failed", e))
    }

    /// Stores an upload if the state rules accept it (a retry of the stored serial with the
    /// same bytes is accepted and writes nothing).
    pub async fn upload(
        &self,
        path: &StatePath,
        id: Option<&str>,
        body: Bytes,
        user: Option<String>,
        expected: &Expected,
    ) -> Result<(), ServerError> {
        let incoming = Incoming::read(&body).map_err(ServerError::NotAState)?;
        let digest = sha256_hex(&body);
        self.write_decided(path, id, user, |live| {
            if let Err(p) = expected.check(live) {
                return Decision::Done(Err(ServerError::Precondition(p)));
            }
            let offered = Snapshot {
                serial: incoming.serial,
                lineage: &incoming.lineage,
                content: Content::Opaque(digest.as_bytes()),
            };
            match live.map(|c| successor(c, &offered)) {
                None | Some(Ok(Successor::Newer)) => Decision::Write {
                    body: body.clone(),
                    sha256: digest.clone(),
                    incoming: incoming.clone(),
                    then: (),
                },
                Some(Ok(Successor::Identical)) => Decision::Done(Ok(())),
                Some(Err(refusal)) => Decision::Done(Err(ServerError::Refused(refusal))),
            }
        })
        .await
    }

    /// Deletes the state (404 when nothing is stored).
    pub async fn delete(
        &self,
        path: &StatePath,
        id: Option<&str>,
        user: Option<String>,
    ) -> Result<(), ServerError> {
        self.write_decided(path, id, user, |_| Decision::Delete(()))
            .await
    }

    /// Writes version `n` again as a new version with the serial above the current one, under
    /// the lock rules of an upload (`id`: the lock ID the caller holds).
    pub async fn roll_back(
        &self,
        path: &StatePath,
        n: u64,
        id: Option<&str>,
        user: Option<String>,
    ) -> Result<RolledBack, ServerError> {
        let (old, bytes) = self.version(path, n).await?;
        // A client's envelope (sent through the server, or written directly with a key the
        // server does not have): still an envelope after opening.
        if Incoming::read(&bytes).is_ok_and(|i| i.encrypted) {
            return Err(ServerError::ClientEnvelopeRollback(n));
        }
        let done = self
            .write_decided(path, id, user, |current| {
                if let Some(cur) = current {
                    if !cur.lineage.is_empty() && cur.lineage != old.lineage {
                        return Decision::Done(Err(ServerError::Refused(
                            Refusal::RestoreForeignLineage {
                                stored: cur.lineage.clone(),
                                incoming: old.lineage.clone(),
                            },
                        )));
                    }
                }
                let Some(serial) = current
                    .map_or(old.serial, |c| c.serial.max(old.serial))
                    .checked_add(1)
                else {
                    return Decision::Done(Err(ServerError::SerialExhausted));
                };
                let body = match stateseal_store::state::with_serial(&bytes, serial) {
                    Ok(b) => b,
                    Err(e) => {
                        return Decision::Done(Err(ServerError::Internal {
                            what: "rewriting the serial failed",
                            message: e.to_string(),
                        }))
                    }
                };
                Decision::Write {
                    sha256: sha256_hex(&body),
                    body: body.into(),
                    incoming: Incoming {
                        serial,
                        lineage: old.lineage.clone(),
                        encrypted: false,
                    },
                    then: RolledBack {
                        seq: n,
                        serial,
                        lineage: old.lineage.clone(),
                    },
                }
            })
            .await?;
        tracing::info!(path = %path, seq = n, "rollback");
        Ok(done)
    }

    /// Takes the lock unless another ID holds it: the lock info as stored.
    pub async fn lock(&self, path: &StatePath, info: LockInfo) -> Result<LockInfo, ServerError> {
        if crate::storage::is_unreadable_lock_id(&info.id) {
            return Err(ServerError::ReservedLockId);
        }
        match self
            .storage
            .lock(path, info)
            .await
            .map_err(ServerError::storage("recording the lock failed"))?
        {
            Taken::Yes(stored) => Ok(stored),
            Taken::HeldBy(h) => Err(ServerError::Locked(Box::new(h))),
        }
    }

    /// Releases the lock when `info`'s ID holds it; without lock info (a force-unlock),
    /// whoever holds it. Not being locked is not an error.
    pub async fn unlock(
        &self,
        path: &StatePath,
        info: Option<LockInfo>,
    ) -> Result<(), ServerError> {
        let id = match info {
            Some(i) => i.id,
            None => match self.lock_holder(path).await? {
                None => return Ok(()),
                Some(holder) => {
                    tracing::warn!(
                        lock_id = %holder.id,
                        who = %holder.who,
                        "force-unlock: an UNLOCK without lock info released the lock"
                    );
                    holder.id
                }
            },
        };
        self.release(path, &id).await.map(|_| ())
    }

    /// Releases the lock if its ID is `id`: `true` when released, `false` when it was not
    /// locked, [`ServerError::Locked`] when another ID holds it.
    pub async fn release(&self, path: &StatePath, id: &str) -> Result<bool, ServerError> {
        match self
            .storage
            .unlock(path, id)
            .await
            .map_err(ServerError::storage("releasing the lock failed"))?
        {
            Released::Yes => Ok(true),
            Released::NotLocked => Ok(false),
            Released::HeldBy(h) => Err(ServerError::Locked(Box::new(h))),
        }
    }

    /// A page of the states under `prefix` that `visible` lets through, each with its newest
    /// version and lock holder; a state whose records can't be read is listed as unreadable.
    pub async fn list(
        &self,
        prefix: &str,
        page: &Page,
        visible: Visible<'_>,
    ) -> Result<Listing, ServerError> {
        let listed = self
            .storage
            .listing(prefix, page, visible)
            .await
            .map_err(ServerError::storage("listing states failed"))?;
        let rows: Vec<StateRow> = listed
            .states
            .into_iter()
            .map(|s| {
                let unreadable = s.current.is_err() || s.lock.is_err();
                for e in [s.current.as_ref().err(), s.lock.as_ref().err()]
                    .into_iter()
                    .flatten()
                {
                    tracing::error!(path = %s.path, error = %e, "listing: a state's records could not be read");
                }
                StateRow {
                    path: s.path,
                    current: s.current.ok().flatten(),
                    lock: s.lock.ok().flatten(),
                    providers: s.providers,
                    unreadable,
                }
            })
            .collect();
        let next = match listed.truncated {
            true => rows.last().map(|r| r.path.clone()),
            false => None,
        };
        Ok(Listing { rows, next })
    }

    /// The lock holder unless the state is free or `id` holds it.
    async fn check_holder(
        &self,
        path: &StatePath,
        id: Option<&str>,
    ) -> Result<Option<LockInfo>, ServerError> {
        match self.lock_holder(path).await? {
            Some(h) if Some(h.id.as_str()) != id => Err(ServerError::Locked(Box::new(h))),
            h => Ok(h),
        }
    }

    /// The write transaction shared by uploads, deletions and rollbacks: checks the lock,
    /// reads the live version, lets `decide` choose, and stores the result on the condition
    /// that the live version is still the one decided on, deciding again when it is not.
    async fn write_decided<T>(
        &self,
        path: &StatePath,
        id: Option<&str>,
        user: Option<String>,
        mut decide: impl FnMut(Option<&VersionRecord>) -> Decision<T> + Send,
    ) -> Result<T, ServerError> {
        for _ in 0..ATTEMPTS {
            let holder = self.check_holder(path, id).await?;
            let live = self
                .storage
                .live(path)
                .await
                .map_err(ServerError::storage("reading the state failed"))?;
            let who = user.clone().or(holder.map(|h| h.who)).unwrap_or_default();
            let expected = live.as_ref().map(|l| l.token.as_str());
            let (record, bytes, then) = match decide(live.as_ref().map(|l| &l.record)) {
                Decision::Done(r) => return r,
                Decision::Delete(then) => {
                    let Some(l) = &live else {
                        return Err(ServerError::NotFound(Missing::State));
                    };
                    let record = VersionRecord {
                        seq: 0,
                        size: 0,
                        time: GoTime::now().rfc3339_nano(),
                        who,
                        stored: Stored::Deleted,
                        sha256: sha256_hex(b""),
                        version_id: None,
                        ..l.record.clone()
                    };
                    (record, Bytes::new(), then)
                }
                Decision::Write {
                    body,
                    sha256,
                    incoming,
                    then,
                } => {
                    let (record, bytes) = self.seal(body, sha256, incoming, who).await?;
                    (record, bytes, then)
                }
            };
            match self.storage.append(path, expected, record, bytes).await {
                Ok(()) => return Ok(then),
                Err(storage::Error::Changed) => continue,
                Err(e) => return Err(ServerError::storage("storing the state failed")(e)),
            }
        }
        Err(ServerError::Contended(ATTEMPTS))
    }

    /// The bytes to store for an accepted body (encrypted and verified on the blocking pool
    /// when the server encrypts plaintext) and their record; `sha256` is the body's digest.
    async fn seal(
        &self,
        body: Bytes,
        sha256: String,
        incoming: Incoming,
        who: String,
    ) -> Result<(VersionRecord, Bytes), ServerError> {
        let record = VersionRecord {
            seq: 0,
            serial: incoming.serial,
            lineage: incoming.lineage.clone(),
            size: body.len() as u64,
            time: GoTime::now().rfc3339_nano(),
            who,
            stored: Stored::Plaintext,
            sha256,
            version_id: None,
        };
        let sealed = if self.at_rest.seals_with_key(&incoming) {
            let _permit =
                self.at_rest
                    .sealing
                    .acquire()
                    .await
                    .map_err(|e| ServerError::Internal {
                        what: "storing the state failed",
                        message: e.to_string(),
                    })?;
            let at_rest = self.at_rest.clone();
            tokio::task::spawn_blocking(move || at_rest.seal(body, &incoming))
                .await
                .map_err(ServerError::join("storing the state failed"))?
        } else {
            // Nothing to encrypt: no trip to the blocking pool.
            self.at_rest.seal(body, &incoming)
        };
        let (sealed, how) =
            sealed.map_err(|e| ServerError::at_rest("storing the state failed", e))?;
        Ok((
            VersionRecord {
                stored: how,
                ..record
            },
            sealed,
        ))
    }
}

/// The successor rule on bodies the server may not be able to read: core's strict update rule
/// with contents compared as digests, plus one server rule: a state without a lineage never
/// replaces one with a lineage (else two uploads — an empty lineage, then any lineage — would
/// get an unrelated state past the lineage check).
fn successor(stored: &VersionRecord, offered: &Snapshot<'_>) -> Result<Successor, Refusal> {
    if !stored.lineage.is_empty() && offered.lineage.is_empty() {
        return Err(Refusal::ForeignLineage {
            stored: stored.lineage.clone(),
            incoming: String::new(),
        });
    }
    let stored = Snapshot {
        serial: stored.serial,
        lineage: &stored.lineage,
        content: Content::Opaque(stored.sha256.as_bytes()),
    };
    check_update(&stored, offered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(serial: u64, lineage: &str, content: &str) -> VersionRecord {
        VersionRecord {
            seq: 1,
            serial,
            lineage: lineage.into(),
            size: 0,
            time: String::new(),
            who: String::new(),
            stored: Stored::Plaintext,
            sha256: content.into(),
            version_id: None,
        }
    }

    fn offered<'a>(serial: u64, lineage: &'a str, content: &'a str) -> Snapshot<'a> {
        Snapshot {
            serial,
            lineage,
            content: Content::Opaque(content.as_bytes()),
        }
    }

    #[test]
    fn the_successor_rule() {
        let cur = record(5, "L", "five");
        assert_eq!(
            successor(&cur, &offered(6, "L", "six")),
            Ok(Successor::Newer)
        );
        assert_eq!(
            successor(&cur, &offered(5, "L", "five")),
            Ok(Successor::Identical)
        );
        assert_eq!(
            successor(&cur, &offered(5, "L", "other")),
            Err(Refusal::SameSerialOtherContent { serial: 5 })
        );
        assert_eq!(
            successor(&cur, &offered(4, "L", "four")),
            Err(Refusal::OlderSerial {
                stored: 5,
                incoming: 4
            })
        );
        assert_eq!(
            successor(&cur, &offered(9, "M", "x")),
            Err(Refusal::ForeignLineage {
                stored: "L".into(),
                incoming: "M".into()
            })
        );
        // A stored state without a lineage may get one; a lineage is never dropped.
        assert_eq!(
            successor(&record(5, "", "a"), &offered(6, "M", "b")),
            Ok(Successor::Newer)
        );
        assert!(matches!(
            successor(&cur, &offered(6, "", "b")),
            Err(Refusal::ForeignLineage { .. })
        ));
    }
}
