//! Who is asking and what they may do: the one policy every route goes
//! through. `api` turns a request into a [`Principal`] (a person signed in
//! through the proxy or, in the demo, chosen; a token; or nobody) and asks
//! [`decide`] before it acts; the rules live here and nowhere else.
//!
//! | what | who |
//! |---|---|
//! | read | anyone (only signed-in people with `auth.require_sign_in`) |
//! | run a plugin action on an entity | members of its owning group (transitively), admins |
//! | plugin grants, disable/enable, polling now, search rebuild, locations, tokens, audit | admins |
//! | create or delete a campaign | admins, the campaign's owner, tokens with `campaigns:write` |
//! | accept, merge or dismiss a suggested entity | members of the owner it has or is given, admins |
//! | push facts / events | tokens with `facts:write` / `events:write` |

use std::fmt;

use sha2::{Digest, Sha256};

pub use crate::config::SCOPES;
use crate::config::{AuthConfig, AuthMode};
use crate::store::{TokenRecord, now_ms};

/// A person, resolved to the catalog where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// `user:default/jane`, when the person has a User entity.
    pub user_ref: Option<String>,
    /// What they signed in as (email or user name), for records.
    pub login: String,
    /// Every group they belong to, parents included (`group:default/x`).
    pub groups: Vec<String>,
    /// Chosen in the demo's "who are you" picker, not signed in.
    pub demo: bool,
    /// The sign-in session the request came with, if any.
    pub session: Option<SessionRef>,
}

/// A session, as a request carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub id: String,
    /// The anti-forgery token writes must send back (`X-CSRF-Token`).
    pub csrf: String,
}

/// A bearer token's holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHolder {
    pub name: String,
    pub scopes: Vec<String>,
    /// A personal token acts for this person, never beyond their rights.
    pub person: Option<Person>,
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    Person(Person),
    Token(TokenHolder),
}

impl Principal {
    /// How the audit trail names them: `user:default/jane`,
    /// `person:jane@example.com`, `token:ci`, `anonymous`.
    pub fn actor(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".into(),
            Principal::Person(p) => match &p.user_ref {
                Some(r) if p.demo => format!("{r} (demo)"),
                Some(r) => r.clone(),
                None => format!("person:{}", p.login),
            },
            Principal::Token(t) => format!("token:{}", t.name),
        }
    }
}

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission<'a> {
    Read,
    /// Administration: `what` names it in refusals.
    Admin(&'a str),
    /// A token scope (`facts:write`, `events:write`).
    Scope(&'a str),
    /// Run a plugin action on an entity owned by `owner`.
    RunAction {
        owner: Option<&'a str>,
    },
    /// Change a campaign owned by `owner` (none: a new one without owner).
    Campaign {
        owner: Option<&'a str>,
    },
    /// Anything a signed-in person or a token may do (refresh an entity).
    SignedIn,
    /// Decide about software a provider suggests for the catalog, whose
    /// owner is (or, accepted, will be) `owner`.
    Claim {
        owner: Option<&'a str>,
    },
}

/// Why not: 401 when nobody is known, 403 when who is known lacks the right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub unauthenticated: bool,
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The policy.
pub struct Policy<'c> {
    pub config: &'c AuthConfig,
}

impl Policy<'_> {
    fn is_admin(&self, principal: &Principal) -> bool {
        match principal {
            Principal::Person(p) if !p.demo => self
                .config
                .admins
                .iter()
                .filter_map(|a| crate::catalog::EntityRef::parse(a, None, "default").ok())
                .map(|a| a.to_string())
                .any(|a| p.user_ref.as_deref() == Some(a.as_str()) || p.groups.contains(&a)),
            Principal::Token(t) => {
                t.scopes.iter().any(|s| s == "admin") && self.person_allows(t, |p| self.is_admin(p))
            }
            _ => false,
        }
    }

    /// A personal token may do only what its person may; other tokens are
    /// not bound to anyone.
    fn person_allows(&self, t: &TokenHolder, may: impl Fn(&Principal) -> bool) -> bool {
        match &t.person {
            Some(p) => may(&Principal::Person(p.clone())),
            None => true,
        }
    }

    fn has_scope(&self, principal: &Principal, scope: &str) -> bool {
        match principal {
            Principal::Token(t) => {
                t.scopes.iter().any(|s| s == scope || s == "admin")
                    && self.person_allows(t, |p| self.is_admin(p))
            }
            _ => false,
        }
    }

    /// Scopes `principal` may put on a personal token of theirs: reading
    /// and their own campaigns; administrators, everything.
    pub fn grantable_scopes(&self, principal: &Principal) -> Vec<&'static str> {
        if self.is_admin(principal) {
            SCOPES.to_vec()
        } else {
            vec!["read", "campaigns:write"]
        }
    }

    /// Whether `principal` administers (an admin person, or a token with
    /// the admin scope whose person, if any, is one).
    pub fn admin(&self, principal: &Principal) -> bool {
        self.is_admin(principal)
    }

    /// Whether `principal` may do `permission`.
    pub fn decide(&self, principal: &Principal, permission: Permission<'_>) -> Result<(), Refusal> {
        let anonymous = matches!(principal, Principal::Anonymous);
        let who = principal.actor();
        let refuse = |message: String| {
            Err(Refusal {
                unauthenticated: anonymous,
                message,
            })
        };
        let sign_in = match self.config.mode {
            AuthMode::Guest => "with a token (`Authorization: Bearer …`)",
            AuthMode::Proxy => "through the sign-in proxy or with a token",
            AuthMode::Oidc => "at /auth/sign-in or with a token",
        };
        // A personal token with campaigns:write changes what its person
        // may, and nothing else (an administrator's passes as an admin).
        if let (Permission::Campaign { owner }, Some(p)) = (permission, personal(principal))
            && !self.is_admin(principal)
        {
            let person = Principal::Person(p.clone());
            if !matches!(principal, Principal::Token(t) if t.scopes.iter().any(|s| s == "campaigns:write"))
            {
                return refuse(format!("{who} lacks the scope campaigns:write"));
            }
            return self.decide(&person, permission).or_else(|_| {
                refuse(format!(
                    "{who} may not change this campaign: it acts for {}, who is not in its owner {}",
                    person.actor(),
                    owner.unwrap_or("(none)")
                ))
            });
        }
        match permission {
            Permission::Read if anonymous && self.config.require_sign_in() => {
                refuse(format!("sign in {sign_in} to read this portal"))
            }
            Permission::Read => Ok(()),
            Permission::Admin(_) if self.is_admin(principal) => Ok(()),
            Permission::Admin(what) if anonymous => {
                refuse(format!("{what} needs an administrator; sign in {sign_in}"))
            }
            Permission::Admin(what) => refuse(format!(
                "{what} needs an administrator, and {who} is not one: administrators are listed in auth.admins in greenroom.toml (or hold a token with the admin scope)"
            )),
            Permission::Scope(scope) if self.has_scope(principal, scope) => Ok(()),
            Permission::Scope(scope) if anonymous => refuse(format!(
                "this route needs `Authorization: Bearer <token>` with the scope {scope}"
            )),
            Permission::Scope(scope) => match principal {
                Principal::Token(t) => refuse(format!(
                    "token '{}' lacks the scope {scope}; give it the scope (server.tokens, or a new token from `greenroom token create --scope {scope}`)",
                    t.name
                )),
                _ => refuse(format!(
                    "this route needs a token with the scope {scope}, not a person's sign-in"
                )),
            },
            Permission::SignedIn if anonymous => refuse(format!("sign in {sign_in}")),
            Permission::SignedIn => Ok(()),
            // Administrators act as themselves: a token, even an admin
            // one, never runs an action.
            Permission::RunAction { .. }
                if matches!(principal, Principal::Person(_)) && self.is_admin(principal) =>
            {
                Ok(())
            }
            Permission::RunAction { .. } if anonymous => {
                refuse(format!("running an action needs a person; sign in {sign_in}"))
            }
            Permission::RunAction { owner } => match principal {
                Principal::Person(p) if owner.is_some_and(|o| p.groups.iter().any(|g| g == o) || p.user_ref.as_deref() == Some(o)) => Ok(()),
                Principal::Person(_) => refuse(format!(
                    "{who} may not run actions on this entity: only members of its owner {} (or administrators) may",
                    owner.unwrap_or("(none)")
                )),
                _ => refuse(
                    "actions run as a person, never as a token: sign in as someone in the owning team".into(),
                ),
            },
            Permission::Claim { .. } if self.is_admin(principal) => Ok(()),
            Permission::Claim { .. } if anonymous => refuse(format!(
                "deciding about a suggestion needs a member of its owner or an administrator; sign in {sign_in}"
            )),
            Permission::Claim { owner } => match principal {
                Principal::Person(p)
                    if owner.is_some_and(|o| {
                        p.groups.iter().any(|g| g == o) || p.user_ref.as_deref() == Some(o)
                    }) =>
                {
                    Ok(())
                }
                Principal::Person(_) => refuse(match owner {
                    Some(o) => format!(
                        "{who} may not decide this: only members of {o} (or administrators) may"
                    ),
                    None => format!(
                        "{who} may not decide this: it has no owner yet, so an administrator decides (or accept it for a team you are in)"
                    ),
                }),
                _ => refuse(
                    "suggestions are decided by a person, not a token: sign in as someone in the owning team".into(),
                ),
            },
            Permission::Campaign { .. }
                if self.is_admin(principal)
                    || matches!(principal, Principal::Token(t) if t.person.is_none())
                        && self.has_scope(principal, "campaigns:write") =>
            {
                Ok(())
            }
            Permission::Campaign { .. } if anonymous => refuse(format!(
                "changing a campaign needs its owner, an administrator or a token with campaigns:write; sign in {sign_in}"
            )),
            Permission::Campaign { owner } => match principal {
                Principal::Person(p)
                    if !p.demo
                        && owner.is_some_and(|o| {
                            p.groups.iter().any(|g| g == o) || p.user_ref.as_deref() == Some(o)
                        }) =>
                {
                    Ok(())
                }
                _ => refuse(format!(
                    "{who} may not change this campaign: only its owner {} and administrators may",
                    owner.unwrap_or("(none)")
                )),
            },
        }
    }
}

/// The person a personal token acts for.
fn personal(principal: &Principal) -> Option<&Person> {
    match principal {
        Principal::Token(t) => t.person.as_ref(),
        _ => None,
    }
}

/// Checks a new token's fields and makes its record; shared with the CLI.
pub fn token_record(
    name: &str,
    scopes: &[String],
    expires: Option<&str>,
    owner: Option<String>,
    created_by: &str,
) -> Result<TokenRecord, String> {
    if name.trim().is_empty() {
        return Err("a token needs a name, e.g. ci".into());
    }
    if scopes.is_empty() {
        return Err(format!(
            "a token needs at least one scope: {}",
            SCOPES.join(", ")
        ));
    }
    if let Some(bad) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        return Err(format!(
            "unknown scope '{bad}'; scopes are {}",
            SCOPES.join(", ")
        ));
    }
    let now = now_ms();
    let expires_ms = match expires {
        Some(text) => Some(
            now + humantime::parse_duration(text)
                .map_err(|e| format!("expires '{text}' is not a duration like 90d: {e}"))?
                .as_millis() as i64,
        ),
        None => None,
    };
    Ok(TokenRecord {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.trim().to_string(),
        scopes: scopes.to_vec(),
        owner,
        created_by: created_by.to_string(),
        created_ms: now,
        expires_ms,
        revoked_ms: None,
        person: None,
    })
}

/// A new token's secret: 32 random bytes, as `grt_` and hex, shown once.
pub fn new_token_secret() -> String {
    random_secret("grt_")
}

/// `prefix` and 32 bytes from the system's random source, in hex (two v4
/// UUIDs: 244 random bits).
pub fn random_secret(prefix: &str) -> String {
    let bytes: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
        .iter()
        .flat_map(|u| *u.as_bytes())
        .collect();
    let mut out = String::with_capacity(prefix.len() + 64);
    out.push_str(prefix);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// What the store keeps of a token: its SHA-256. Tokens are random and
/// long, so a fast hash is enough; the secret itself is never stored.
pub fn token_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mode: AuthMode) -> AuthConfig {
        AuthConfig {
            mode,
            admins: vec!["group:default/platform".into(), "user:default/jane".into()],
            ..AuthConfig::default()
        }
    }

    fn person(user: &str, groups: &[&str]) -> Principal {
        Principal::Person(Person {
            user_ref: Some(format!("user:default/{user}")),
            login: format!("{user}@example.com"),
            groups: groups
                .iter()
                .map(|g| format!("group:default/{g}"))
                .collect(),
            demo: false,
            session: None,
        })
    }

    fn token(scopes: &[&str]) -> Principal {
        Principal::Token(TokenHolder {
            name: "ci".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            person: None,
        })
    }

    #[test]
    fn the_permissions_table() {
        let c = config(AuthMode::Proxy);
        let p = Policy { config: &c };
        let owner = Some("group:default/checkout");
        let dev = person("dan", &["checkout", "engineering"]);
        let other = person("eve", &["payments"]);
        let admin = person("ops", &["platform"]);
        let jane = person("jane", &[]);
        let anon = Principal::Anonymous;

        // Reads: anyone in guest mode, signed-in people by default here.
        assert!(p.decide(&dev, Permission::Read).is_ok());
        assert!(
            p.decide(&anon, Permission::Read)
                .unwrap_err()
                .unauthenticated
        );
        let guest = config(AuthMode::Guest);
        assert!(
            Policy { config: &guest }
                .decide(&anon, Permission::Read)
                .is_ok()
        );

        // Actions: the owning team and admins, never a token.
        let run = Permission::RunAction { owner };
        assert!(p.decide(&dev, run).is_ok());
        assert!(p.decide(&admin, run).is_ok());
        assert!(p.decide(&jane, run).is_ok(), "admins by user ref");
        let e = p.decide(&other, run).unwrap_err();
        assert!(!e.unauthenticated);
        assert!(
            e.message
                .contains("only members of its owner group:default/checkout"),
            "{e}"
        );
        assert!(p.decide(&token(&["facts:write"]), run).is_err());
        assert!(
            p.decide(&token(&["admin"]), run).is_err(),
            "tokens never act"
        );
        assert!(p.decide(&anon, run).unwrap_err().unauthenticated);

        // Administration.
        let admin_op = Permission::Admin("granting a plugin");
        assert!(p.decide(&admin, admin_op).is_ok());
        assert!(p.decide(&token(&["admin"]), admin_op).is_ok());
        let e = p.decide(&dev, admin_op).unwrap_err();
        assert!(e.message.contains("auth.admins"), "{e}");
        assert!(p.decide(&token(&["facts:write"]), admin_op).is_err());

        // Scopes.
        assert!(
            p.decide(&token(&["facts:write"]), Permission::Scope("facts:write"))
                .is_ok()
        );
        let e = p
            .decide(&token(&["events:write"]), Permission::Scope("facts:write"))
            .unwrap_err();
        assert!(
            e.message.contains("token 'ci' lacks the scope facts:write"),
            "{e}"
        );
        assert!(p.decide(&dev, Permission::Scope("facts:write")).is_err());

        // Campaigns: owner, admins, campaigns:write.
        assert!(p.decide(&dev, Permission::Campaign { owner }).is_ok());
        assert!(p.decide(&other, Permission::Campaign { owner }).is_err());
        assert!(
            p.decide(
                &token(&["campaigns:write"]),
                Permission::Campaign { owner: None }
            )
            .is_ok()
        );

        // Suggestions: the owner's members and admins, as people; one
        // without an owner only admins.
        let claim = Permission::Claim { owner };
        assert!(p.decide(&dev, claim).is_ok());
        assert!(p.decide(&admin, claim).is_ok());
        let e = p.decide(&other, claim).unwrap_err();
        assert!(
            e.message.contains("only members of group:default/checkout"),
            "{e}"
        );
        assert!(p.decide(&token(&["facts:write"]), claim).is_err());
        assert!(p.decide(&anon, claim).unwrap_err().unauthenticated);
        let ownerless = Permission::Claim { owner: None };
        assert!(p.decide(&dev, ownerless).is_err());
        assert!(p.decide(&jane, ownerless).is_ok());

        // A demo person is nobody's administrator.
        let demo = Principal::Person(Person {
            demo: true,
            ..match person("jane", &["platform"]) {
                Principal::Person(p) => p,
                _ => unreachable!(),
            }
        });
        assert!(p.decide(&demo, admin_op).is_err());
    }

    #[test]
    fn a_personal_token_never_exceeds_its_person() {
        let c = config(AuthMode::Oidc);
        let p = Policy { config: &c };
        let personal = |user: &str, groups: &[&str], scopes: &[&str]| {
            let Principal::Person(person) = person(user, groups) else {
                unreachable!()
            };
            Principal::Token(TokenHolder {
                name: "laptop".into(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                person: Some(person),
            })
        };
        let checkout = Some("group:default/checkout");
        let dan = personal("dan", &["checkout"], &["read", "campaigns:write"]);
        assert!(p.decide(&dan, Permission::Read).is_ok());
        assert!(
            p.decide(&dan, Permission::Campaign { owner: checkout })
                .is_ok()
        );
        let e = p
            .decide(
                &dan,
                Permission::Campaign {
                    owner: Some("group:default/payments"),
                },
            )
            .unwrap_err();
        assert!(e.message.contains("acts for user:default/dan"), "{e}");
        // Without the scope, not even his own campaigns.
        let reader = personal("dan", &["checkout"], &["read"]);
        assert!(
            p.decide(&reader, Permission::Campaign { owner: checkout })
                .is_err()
        );
        // An admin scope on a token of someone who is no administrator
        // (any more) grants nothing; on an administrator's, everything
        // but actions.
        let demoted = personal("dan", &["checkout"], &["admin"]);
        assert!(p.decide(&demoted, Permission::Admin("x")).is_err());
        assert!(
            p.decide(&demoted, Permission::Scope("facts:write"))
                .is_err()
        );
        let ops = personal("ops", &["platform"], &["admin"]);
        assert!(p.decide(&ops, Permission::Admin("x")).is_ok());
        assert!(p.decide(&ops, Permission::Scope("facts:write")).is_ok());
        assert!(
            p.decide(&ops, Permission::RunAction { owner: checkout })
                .is_err()
        );
        // What each may put on a token.
        assert_eq!(
            p.grantable_scopes(&person("dan", &["checkout"])),
            vec!["read", "campaigns:write"]
        );
        assert_eq!(p.grantable_scopes(&person("ops", &["platform"])), SCOPES);
    }

    #[test]
    fn token_secrets_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (new_token_secret(), new_token_secret());
        assert_ne!(a, b);
        assert!(a.starts_with("grt_") && a.len() == 4 + 64);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_eq!(token_hash(&a).len(), 32);
    }
}
