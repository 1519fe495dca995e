//! Loading the parts of a root module that the encryption configuration (and the backend)
//! depend on: `terraform { encryption {} backend "…" {} }`, `variable` and `locals` blocks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::syntax::{self, Attribute, Block, JsonSchema};
use super::{encryption_block_labels, EncryptionConfig};
use stateseal_core::diagnostics::{Diagnostic, Diagnostics};

/// What stateseal reads from a directory of `*.tf` / `*.tf.json` files.
#[derive(Clone, Debug, Default)]
pub struct Module {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    /// The `encryption` block, with override files already merged in.
    pub encryption: Option<EncryptionConfig>,
    /// The `backend "TYPE" {}` block, if any (override files replace it).
    pub backend: Option<Block>,
    pub variables: Vec<VariableDecl>,
    pub locals: Vec<Attribute>,
}

#[derive(Clone, Debug)]
pub struct VariableDecl {
    pub name: String,
    pub default: Option<Attribute>,
    /// True when no `type` is declared or it is `string` (then `-var` values are taken literally).
    pub string_typed: bool,
    pub block: Block,
}

struct FileSchema;

impl JsonSchema for FileSchema {
    fn block_labels(&self, parents: &[&str], key: &str) -> Option<usize> {
        if let Some(i) = parents.iter().position(|p| *p == "encryption") {
            let inner = &parents[i + 1..];
            if inner.iter().any(|p| *p == "key_provider" || *p == "method") {
                return None;
            }
            return encryption_block_labels(inner.last().copied(), key);
        }
        match (parents, key) {
            ([], "terraform" | "locals" | "moved" | "import" | "removed" | "check") => Some(0),
            ([], "variable" | "module" | "output" | "provider") => Some(1),
            ([], "resource" | "data" | "ephemeral") => Some(2),
            (["terraform"], "encryption" | "required_providers" | "cloud") => Some(0),
            (["terraform"], "backend") => Some(1),
            (["variable"], "validation") => Some(0),
            _ => None,
        }
    }
}

fn is_override(name: &str) -> bool {
    let stem = name.trim_end_matches(".json").trim_end_matches(".tf");
    stem == "override" || stem.ends_with("_override")
}

/// Loads the configuration files of `dir`. A directory without any is an empty module.
pub fn load(dir: &Path) -> Result<Module, Diagnostics> {
    let mut module = Module {
        dir: dir.to_path_buf(),
        ..Module::default()
    };
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            "Cannot read configuration directory",
            format!("{}: {e}", dir.display()),
            None,
        ))
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| !t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| (n.ends_with(".tf") || n.ends_with(".tf.json")) && !n.starts_with('.'))
        .collect();
    names.sort();
    let (overrides, primary): (Vec<String>, Vec<String>) =
        names.into_iter().partition(|n| is_override(n));
    let mut diags = Diagnostics::default();
    let mut override_encryption: Vec<EncryptionConfig> = Vec::new();
    for (is_over, name) in primary
        .iter()
        .map(|n| (false, n))
        .chain(overrides.iter().map(|n| (true, n)))
    {
        let path = dir.join(name);
        let src = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) => {
                diags.push(Diagnostic::error(
                    "Cannot read configuration file",
                    format!("{}: {e}", path.display()),
                    None,
                ));
                continue;
            }
        };
        module.files.push(path.clone());
        let file: Arc<str> = path.display().to_string().into();
        let parsed = if name.ends_with(".json") {
            syntax::parse_json(&file, &src, &FileSchema)
        } else {
            syntax::parse_hcl(&file, &src)
        };
        let body = match parsed {
            Ok(b) => b,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        for block in &body.blocks {
            match block.kind.as_str() {
                "terraform" => {
                    for inner in &block.body.blocks {
                        match inner.kind.as_str() {
                            "encryption" => match EncryptionConfig::from_body(&inner.body) {
                                Ok(cfg) if is_over => override_encryption.push(cfg),
                                Ok(cfg) => {
                                    if module.encryption.is_some() {
                                        diags.push(Diagnostic::error(
                                            "Duplicate encryption configuration",
                                            "A module may have only one encryption block (override files merge into it).",
                                            Some(&inner.location),
                                        ));
                                    } else {
                                        module.encryption = Some(cfg);
                                    }
                                }
                                Err(d) => diags.0.extend(d.0),
                            },
                            "backend" => {
                                if module.backend.is_some() && !is_over {
                                    diags.push(Diagnostic::error(
                                        "Duplicate backend configuration",
                                        "A module may have only one backend block.",
                                        Some(&inner.location),
                                    ));
                                } else {
                                    module.backend = Some(inner.clone());
                                }
                            }
                            _ => {}
                        }
                    }
                }
                "variable" => {
                    let Some(name) = block.labels.first() else {
                        continue;
                    };
                    let string_typed = match block.body.attribute("type").map(|a| &a.expr) {
                        None => true,
                        Some(hcl::Expression::Variable(v)) => v.as_str() == "string",
                        Some(hcl::Expression::String(s)) => s == "string",
                        Some(_) => false,
                    };
                    let decl = VariableDecl {
                        name: name.clone(),
                        default: block.body.attribute("default").cloned(),
                        string_typed,
                        block: block.clone(),
                    };
                    match module.variables.iter_mut().find(|v| v.name == *name) {
                        Some(existing) if is_over => {
                            if decl.default.is_some() {
                                existing.default = decl.default;
                            }
                        }
                        Some(_) => diags.push(Diagnostic::error(
                            "Duplicate variable declaration",
                            format!("A variable named {name:?} was already declared."),
                            Some(&block.location),
                        )),
                        None => module.variables.push(decl),
                    }
                }
                "locals" => {
                    for a in &block.body.attributes {
                        module.locals.retain(|l| l.name != a.name || !is_over);
                        module.locals.push(a.clone());
                    }
                }
                _ => {}
            }
        }
    }
    for over in override_encryption {
        module.encryption = Some(match module.encryption.take() {
            Some(base) => base.merge(over),
            None => over,
        });
    }
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok(module)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_blocks_from_hcl_and_json_files_and_merges_overrides() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("main.tf"),
            "variable \"pass\" {\n  type = string\n}\nlocals { iters = 300000 }\nterraform {\n  backend \"s3\" { bucket = \"b\" }\n  encryption {\n    method \"unencrypted\" \"u\" {}\n    state { method = method.unencrypted.u }\n  }\n}\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("vars.tf.json"),
            r#"{"variable": {"extra": {"default": "x", "type": "list(string)"}}}"#,
        )
        .unwrap();
        std::fs::write(
            d.path().join("enc_override.tf"),
            "terraform {\n encryption {\n  method \"unencrypted\" \"v\" {}\n }\n}\n",
        )
        .unwrap();
        let m = load(d.path()).unwrap();
        assert_eq!(m.variables.len(), 2);
        assert!(m.variables[0].string_typed);
        assert_eq!(m.locals[0].name, "iters");
        assert_eq!(m.backend.as_ref().unwrap().labels, ["s3"]);
        assert_eq!(m.encryption.unwrap().methods.len(), 2);
    }

    #[test]
    fn second_encryption_block_is_an_error_with_location() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.tf"), "terraform {\n  encryption {}\n}\n").unwrap();
        std::fs::write(d.path().join("b.tf"), "\nterraform {\n  encryption {}\n}\n").unwrap();
        let e = load(d.path()).unwrap_err();
        let first = e.errors().next().unwrap();
        assert_eq!(first.summary, "Duplicate encryption configuration");
        assert!(first.location.as_ref().unwrap().file.ends_with("b.tf"));
        assert_eq!(first.location.as_ref().unwrap().line, 3);
    }
}
