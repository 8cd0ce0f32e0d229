//! The WhatsApp message templates last synced from Meta (one document), so
//! broadcasts are checked and previews drawn without asking Meta each time.

use serde::{Deserialize, Serialize};

use super::{Store, StoreResult};
use crate::channels::templates::MessageTemplate;

/// The templates as of one sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateCatalogue {
    /// When they were read from Meta, Unix ms.
    pub synced_ms: i64,
    /// Every template in every language.
    pub templates: Vec<MessageTemplate>,
}

const CATALOGUE_KEY: &str = "templates:whatsapp";

impl Store {
    /// The templates last synced, if ever.
    pub async fn template_catalogue(&self) -> StoreResult<Option<TemplateCatalogue>> {
        self.get_json(CATALOGUE_KEY).await
    }

    /// Replaces the synced templates.
    pub async fn save_template_catalogue(&self, catalogue: &TemplateCatalogue) -> StoreResult<()> {
        self.put_json(CATALOGUE_KEY, catalogue).await
    }
}
