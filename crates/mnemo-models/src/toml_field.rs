//! Test helpers: one config value as the single key of a TOML table (`attention = { … }`,
//! `decoder = "can"`), as it stands in a `[models.<name>]` table, parsed and written.
use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The value of `key` in the TOML `text` (None when the key is absent); the error is the
/// parser's message, which names the offending variant or field.
pub(crate) fn parse<T: DeserializeOwned>(text: &str, key: &str) -> Result<Option<T>, String> {
    let mut table: BTreeMap<String, T> = toml::from_str(text).map_err(|e| e.to_string())?;
    Ok(table.remove(key))
}

/// `key = value` as TOML text.
pub(crate) fn write<T: Serialize>(key: &str, value: &T) -> String {
    toml::to_string(&BTreeMap::from([(key, value)])).expect("a config serialises to TOML")
}
