//! The registry of key-provider and method types. Not global: build one with
//! [`Registry::default`] (the built-in types) or [`Registry::empty`], and add your own.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::key_provider::{self, KeyProvider, KeyProviderFactory};
use crate::method::{self, Method, MethodFactory};

/// The type name of the marker method that allows plaintext.
pub const UNENCRYPTED: &str = "unencrypted";

#[derive(Clone)]
pub struct Registry {
    key_providers: BTreeMap<String, KeyProviderFactory>,
    methods: BTreeMap<String, MethodFactory>,
}

impl Registry {
    /// A registry that knows only the `unencrypted` marker method.
    pub fn empty() -> Registry {
        Registry {
            key_providers: BTreeMap::new(),
            methods: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a key-provider type.
    pub fn register_key_provider<F>(&mut self, type_name: &str, factory: F) -> &mut Self
    where
        F: Fn(&serde_json::Value) -> Result<Box<dyn KeyProvider>, crate::ConfigError>
            + Send
            + Sync
            + 'static,
    {
        self.key_providers
            .insert(type_name.to_string(), Arc::new(factory));
        self
    }

    /// Adds (or replaces) a method type. `unencrypted` is built in and cannot be replaced.
    pub fn register_method<F>(&mut self, type_name: &str, factory: F) -> &mut Self
    where
        F: Fn(&serde_json::Value) -> Result<Box<dyn Method>, crate::ConfigError>
            + Send
            + Sync
            + 'static,
    {
        assert_ne!(type_name, UNENCRYPTED, "the unencrypted method is built in");
        self.methods
            .insert(type_name.to_string(), Arc::new(factory));
        self
    }

    pub fn key_provider(&self, type_name: &str) -> Option<&KeyProviderFactory> {
        self.key_providers.get(type_name)
    }

    pub fn method(&self, type_name: &str) -> Option<&MethodFactory> {
        self.methods.get(type_name)
    }

    pub fn has_method(&self, type_name: &str) -> bool {
        type_name == UNENCRYPTED || self.methods.contains_key(type_name)
    }

    pub fn key_provider_types(&self) -> impl Iterator<Item = &str> {
        self.key_providers.keys().map(String::as_str)
    }

    pub fn method_types(&self) -> impl Iterator<Item = &str> {
        std::iter::once(UNENCRYPTED).chain(self.methods.keys().map(String::as_str))
    }
}

impl Default for Registry {
    /// The key providers and methods OpenTofu ships that this build includes.
    fn default() -> Registry {
        let mut r = Registry::empty();
        r.register_key_provider("pbkdf2", key_provider::pbkdf2::build);
        #[cfg(feature = "aws-kms")]
        r.register_key_provider("aws_kms", key_provider::aws_kms::build);
        r.register_key_provider("external", key_provider::external::build);
        #[cfg(feature = "gcp-kms")]
        r.register_key_provider("gcp_kms", key_provider::gcp_kms::build);
        #[cfg(feature = "openbao")]
        r.register_key_provider("openbao", key_provider::openbao::build);
        #[cfg(feature = "azure-vault")]
        r.register_key_provider("azure_vault", key_provider::azure_vault::build);
        r.register_method("aes_gcm", method::aes_gcm::build);
        r.register_method("external", method::external::build);
        r
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field(
                "key_providers",
                &self.key_providers.keys().collect::<Vec<_>>(),
            )
            .field("methods", &self.method_types().collect::<Vec<_>>())
            .finish()
    }
}
