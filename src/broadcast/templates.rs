//! The WhatsApp templates broadcasts may use: synced from Meta into the
//! store, and every template broadcast checked against them before it is
//! scheduled — an unknown name or language, a template not approved, or the
//! wrong number of body parameters is refused up front instead of failing
//! recipient by recipient at send time (Graph errors 132000/132001/132015/
//! 132016).
//!
//! Templates belong to a WhatsApp Business Account: each number's
//! (`[[whatsapp.numbers]] business_account_id`, default
//! `whatsapp.business_account_id`) is synced, and a broadcast is checked
//! against the account of the number it goes out from. A sender without a
//! business account id is neither synced nor checked.

use std::time::Duration;

use super::{BroadcastMessage, Broadcasts, TemplateSpec};
use crate::channels::templates::{MessageTemplate, TemplateSyncError, fetch_templates};
use crate::store::{StoreError, TemplateCatalogue};

/// Why a template broadcast is refused.
#[derive(Debug, thiserror::Error)]
pub enum TemplateCheckError {
    /// No template with that name in that language.
    #[error(
        "there is no template {name:?} in language {language:?}{hint}; sync the templates or pick one from GET /api/v1/templates"
    )]
    Unknown {
        /// The name asked for.
        name: String,
        /// The language asked for.
        language: String,
        /// The languages it exists in, when it exists in others.
        hint: String,
    },
    /// Meta has not approved it (pending, rejected, paused, disabled).
    #[error(
        "template {name:?} ({language}) is {status}, not APPROVED; only approved templates can be sent"
    )]
    NotApproved {
        /// Name.
        name: String,
        /// Language.
        language: String,
        /// Its status.
        status: String,
    },
    /// The number of body parameters differs from the template's.
    #[error(
        "template {name:?} ({language}) takes {expected} body parameter(s), the broadcast gives {given}"
    )]
    Parameters {
        /// Name.
        name: String,
        /// Language.
        language: String,
        /// What the template takes.
        expected: u32,
        /// What was given.
        given: usize,
    },
    /// The templates could not be synced to check against.
    #[error("the templates could not be read from Meta to check this broadcast: {0}")]
    Sync(#[from] SyncError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No WhatsApp Business Account id (or no access token) configured.
    #[error(
        "set whatsapp.business_account_id (or business_account_id of each [[whatsapp.numbers]]) and an access token to sync templates from Meta"
    )]
    NotConfigured,
    /// Meta refused or answered something else.
    #[error(transparent)]
    Graph(#[from] TemplateSyncError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether templates are synced and checked here: WhatsApp is on and at
/// least one business account id is configured.
pub fn configured(broadcasts: &Broadcasts) -> bool {
    let wa = &broadcasts.config().whatsapp;
    wa.enabled && !wa.business_accounts().is_empty()
}

/// Reads every template of `business_account` from Meta and stores them.
async fn sync_one(
    broadcasts: &Broadcasts,
    http: &reqwest::Client,
    business_account: &str,
    token: &str,
) -> Result<TemplateCatalogue, SyncError> {
    let wa = &broadcasts.config().whatsapp;
    let templates = fetch_templates(http, &wa.api_base, business_account, token).await?;
    let catalogue = TemplateCatalogue {
        synced_ms: broadcasts.store().now_ms(),
        templates,
    };
    broadcasts
        .store()
        .save_template_catalogue(business_account, &catalogue)
        .await?;
    tracing::info!(
        business_account,
        templates = catalogue.templates.len(),
        "message templates synced from Meta"
    );
    Ok(catalogue)
}

/// Reads the templates of every configured business account from Meta and
/// stores them; returns each account's.
pub async fn sync(broadcasts: &Broadcasts) -> Result<Vec<(String, TemplateCatalogue)>, SyncError> {
    if !configured(broadcasts) {
        return Err(SyncError::NotConfigured);
    }
    let accounts = broadcasts.config().whatsapp.business_accounts();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| TemplateSyncError::Graph(e.to_string()))?;
    let mut out = Vec::with_capacity(accounts.len());
    for (waba, token) in accounts {
        let Some(token) = token else {
            return Err(SyncError::NotConfigured);
        };
        let catalogue = sync_one(broadcasts, &http, &waba, token.expose()).await?;
        out.push((waba, catalogue));
    }
    Ok(out)
}

/// The business account of sender `from` and its stored templates (synced
/// first when there are none yet); `None` when that sender has no business
/// account configured (nothing to check against).
pub async fn catalogue(
    broadcasts: &Broadcasts,
    from: Option<&str>,
) -> Result<Option<(String, TemplateCatalogue)>, SyncError> {
    let wa = &broadcasts.config().whatsapp;
    if !wa.enabled {
        return Ok(None);
    }
    let Some(waba) = wa.business_account_of(from).map(str::to_string) else {
        return Ok(None);
    };
    if let Some(c) = broadcasts.store().template_catalogue(&waba).await? {
        return Ok(Some((waba, c)));
    }
    let token = wa
        .business_accounts()
        .into_iter()
        .find(|(w, _)| *w == waba)
        .and_then(|(_, t)| t)
        .ok_or(SyncError::NotConfigured)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| TemplateSyncError::Graph(e.to_string()))?;
    let c = sync_one(broadcasts, &http, &waba, token.expose()).await?;
    Ok(Some((waba, c)))
}

/// The template `spec` names, if the broadcast may use it (pure).
pub fn check<'a>(
    catalogue: &'a TemplateCatalogue,
    spec: &TemplateSpec,
) -> Result<&'a MessageTemplate, TemplateCheckError> {
    let Some(t) = catalogue
        .templates
        .iter()
        .find(|t| t.name == spec.name && t.language == spec.language)
    else {
        let others: Vec<&str> = catalogue
            .templates
            .iter()
            .filter(|t| t.name == spec.name)
            .map(|t| t.language.as_str())
            .collect();
        return Err(TemplateCheckError::Unknown {
            name: spec.name.clone(),
            language: spec.language.clone(),
            hint: if others.is_empty() {
                String::new()
            } else {
                format!(" (it exists in {})", others.join(", "))
            },
        });
    };
    if !t.approved() {
        return Err(TemplateCheckError::NotApproved {
            name: t.name.clone(),
            language: t.language.clone(),
            status: t.status.clone(),
        });
    }
    if t.parameters as usize != spec.body_parameters.len() {
        return Err(TemplateCheckError::Parameters {
            name: t.name.clone(),
            language: t.language.clone(),
            expected: t.parameters,
            given: spec.body_parameters.len(),
        });
    }
    Ok(t)
}

/// Checks a broadcast's message against the templates of the business
/// account of its sender `from` (text messages, Instagram, and senders
/// without a business account id pass).
pub async fn check_message(
    broadcasts: &Broadcasts,
    channel: crate::channels::Channel,
    from: Option<&str>,
    message: &BroadcastMessage,
) -> Result<(), TemplateCheckError> {
    let BroadcastMessage::Template { template } = message else {
        return Ok(());
    };
    if channel != crate::channels::Channel::WhatsApp {
        return Ok(());
    }
    let Some((_, catalogue)) = catalogue(broadcasts, from).await? else {
        return Ok(());
    };
    check(&catalogue, template).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(name: &str, language: &str, status: &str, parameters: u32) -> MessageTemplate {
        MessageTemplate {
            id: String::new(),
            name: name.into(),
            language: language.into(),
            status: status.into(),
            category: "MARKETING".into(),
            body: String::new(),
            parameters,
            header: None,
            footer: None,
            buttons: Vec::new(),
        }
    }

    fn spec(name: &str, language: &str, n: usize) -> TemplateSpec {
        TemplateSpec {
            name: name.into(),
            language: language.into(),
            body_parameters: vec!["x".into(); n],
        }
    }

    #[test]
    fn unknown_unapproved_and_wrong_counts_are_refused() {
        let c = TemplateCatalogue {
            synced_ms: 0,
            templates: vec![
                template("promo", "id", "APPROVED", 2),
                template("promo", "en_US", "APPROVED", 2),
                template("baru", "id", "PENDING", 0),
            ],
        };
        assert!(check(&c, &spec("promo", "id", 2)).is_ok());
        match check(&c, &spec("promo", "ms", 2)) {
            Err(TemplateCheckError::Unknown { hint, .. }) => assert!(hint.contains("id, en_US")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            check(&c, &spec("nope", "id", 0)),
            Err(TemplateCheckError::Unknown { .. })
        ));
        assert!(matches!(
            check(&c, &spec("baru", "id", 0)),
            Err(TemplateCheckError::NotApproved { .. })
        ));
        assert!(matches!(
            check(&c, &spec("promo", "id", 1)),
            Err(TemplateCheckError::Parameters {
                expected: 2,
                given: 1,
                ..
            })
        ));
    }
}
