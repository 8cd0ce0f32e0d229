//! The WhatsApp message templates last synced from Meta, one document per
//! WhatsApp Business Account (`templates:whatsapp:<waba id>`), so broadcasts
//! are checked and previews drawn without asking Meta each time.

use serde::{Deserialize, Serialize};

use super::{Store, StoreResult};
use crate::channels::templates::MessageTemplate;

/// The templates of one business account as of one sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateCatalogue {
    /// When they were read from Meta, Unix ms.
    pub synced_ms: i64,
    /// Every template in every language.
    pub templates: Vec<MessageTemplate>,
}

fn catalogue_key(business_account: &str) -> String {
    format!("templates:whatsapp:{business_account}")
}

impl Store {
    /// The templates last synced from `business_account`, if ever.
    pub async fn template_catalogue(
        &self,
        business_account: &str,
    ) -> StoreResult<Option<TemplateCatalogue>> {
        self.get_json(&catalogue_key(business_account)).await
    }

    /// Replaces the synced templates of `business_account`.
    pub async fn save_template_catalogue(
        &self,
        business_account: &str,
        catalogue: &TemplateCatalogue,
    ) -> StoreResult<()> {
        self.put_json(&catalogue_key(business_account), catalogue)
            .await
    }
}
