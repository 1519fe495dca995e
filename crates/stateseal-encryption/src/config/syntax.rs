//! A small syntax tree for HCL native and HCL JSON sources, with locations.
//!
//! Native HCL is parsed with `hcl-edit` (which keeps spans); expressions are converted to
//! `hcl-rs` expressions for evaluation. JSON needs a schema to tell blocks from attributes
//! ([`JsonSchema`]); strings holding `${…}` or `%{…}` become templates, as in HCL's JSON syntax.

use std::sync::Arc;

use hcl::expr::{Expression, TemplateExpr};
use hcl_edit::structure::Structure;
use hcl_edit::Span as _;

use stateseal_core::diagnostics::{Diagnostic, Location};

#[derive(Clone, Debug, PartialEq)]
pub struct Body {
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<Block>,
    pub location: Location,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub kind: String,
    pub labels: Vec<String>,
    pub body: Body,
    pub location: Location,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub expr: Expression,
    pub location: Location,
}

impl Body {
    pub fn empty(location: Location) -> Body {
        Body {
            attributes: Vec::new(),
            blocks: Vec::new(),
            location,
        }
    }

    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().rev().find(|a| a.name == name)
    }

    pub fn blocks_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
        self.blocks.iter().filter(move |b| b.kind == kind)
    }
}

/// The deepest bracket nesting accepted in a configuration source. The HCL parser and the
/// evaluator recurse once per level, so without a bound a corrupted or hostile file could
/// exhaust the stack (found by fuzzing). Real configurations stay below 15.
pub const MAX_NESTING: usize = 48;

/// Refuses sources nested more than [`MAX_NESTING`] brackets deep (counting `(`, `[` and `{`
/// everywhere, including inside strings: a conservative bound, checked before any parser runs).
pub fn check_nesting(file: &Arc<str>, src: &str) -> Result<(), Diagnostic> {
    let mut depth = 0usize;
    for (i, b) in src.bytes().enumerate() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Diagnostic::error(
                        "Configuration nested too deeply",
                        format!(
                            "more than {MAX_NESTING} levels of brackets; simplify the expression"
                        ),
                        Some(&Location::new(file, src, i)),
                    ));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses native HCL syntax.
pub fn parse_hcl(file: &Arc<str>, src: &str) -> Result<Body, Diagnostic> {
    check_nesting(file, src)?;
    let body = hcl_edit::parser::parse_body(src).map_err(|e| {
        let loc = Location {
            file: file.clone(),
            line: e.location().line(),
            column: e.location().column(),
        };
        Diagnostic::error("Invalid HCL syntax", e.message().to_string(), Some(&loc))
    })?;
    Ok(convert_body(
        file,
        src,
        &body,
        Location {
            file: file.clone(),
            line: 1,
            column: 1,
        },
    ))
}

fn convert_body(
    file: &Arc<str>,
    src: &str,
    body: &hcl_edit::structure::Body,
    location: Location,
) -> Body {
    let loc = |span: Option<std::ops::Range<usize>>| {
        span.map_or_else(|| location.clone(), |s| Location::new(file, src, s.start))
    };
    let mut out = Body::empty(location.clone());
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => out.attributes.push(Attribute {
                name: a.key.as_str().to_string(),
                expr: Expression::from(a.value.clone()),
                location: loc(a.span()),
            }),
            Structure::Block(b) => {
                let block_loc = loc(b.span());
                out.blocks.push(Block {
                    kind: b.ident.as_str().to_string(),
                    labels: b.labels.iter().map(|l| l.as_str().to_string()).collect(),
                    body: convert_body(file, src, &b.body, block_loc.clone()),
                    location: block_loc,
                })
            }
        }
    }
    out
}

/// Which JSON object keys are blocks (and how many labels they take) at each nesting level.
pub trait JsonSchema {
    /// `parents` is the chain of block kinds from the root. `None` means "an attribute".
    fn block_labels(&self, parents: &[&str], key: &str) -> Option<usize>;
}

/// Parses HCL's JSON syntax.
pub fn parse_json(file: &Arc<str>, src: &str, schema: &dyn JsonSchema) -> Result<Body, Diagnostic> {
    check_nesting(file, src)?;
    let value: serde_json::Value = serde_json::from_str(src).map_err(|e| {
        let loc = Location {
            file: file.clone(),
            line: e.line(),
            column: e.column(),
        };
        Diagnostic::error("Invalid JSON syntax", e.to_string(), Some(&loc))
    })?;
    let root = Location {
        file: file.clone(),
        line: 1,
        column: 1,
    };
    let mut cx = JsonCx {
        file,
        src,
        cursor: 0,
    };
    match value {
        serde_json::Value::Object(map) => cx.body(&map, &mut Vec::new(), schema, root),
        _ => Err(Diagnostic::error(
            "Invalid JSON configuration",
            "the root of a JSON configuration must be an object",
            Some(&root),
        )),
    }
}

struct JsonCx<'a> {
    file: &'a Arc<str>,
    src: &'a str,
    /// Where to continue searching for the next key's text (approximate locations).
    cursor: usize,
}

impl JsonCx<'_> {
    fn locate(&mut self, key: &str) -> Location {
        let needle = format!("\"{key}\"");
        let found = self.src[self.cursor.min(self.src.len())..]
            .find(&needle)
            .map(|p| p + self.cursor);
        let at = found.unwrap_or(self.cursor);
        if found.is_some() {
            self.cursor = at + needle.len();
        }
        Location::new(self.file, self.src, at)
    }

    fn body<'p>(
        &mut self,
        map: &'p serde_json::Map<String, serde_json::Value>,
        parents: &mut Vec<&'p str>,
        schema: &dyn JsonSchema,
        location: Location,
    ) -> Result<Body, Diagnostic> {
        let mut out = Body::empty(location);
        for (key, value) in map {
            let loc = self.locate(key);
            if key == "//" {
                continue; // HCL JSON comment property
            }
            match schema.block_labels(parents, key) {
                None => out.attributes.push(Attribute {
                    name: key.clone(),
                    expr: json_expr(value),
                    location: loc,
                }),
                Some(n) => {
                    parents.push(key.as_str());
                    let r = self.blocks(
                        key,
                        value,
                        n,
                        &mut Vec::new(),
                        parents,
                        schema,
                        &loc,
                        &mut out.blocks,
                    );
                    parents.pop();
                    r?;
                }
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn blocks<'p>(
        &mut self,
        kind: &str,
        value: &'p serde_json::Value,
        labels_left: usize,
        labels: &mut Vec<String>,
        parents: &mut Vec<&'p str>,
        schema: &dyn JsonSchema,
        loc: &Location,
        out: &mut Vec<Block>,
    ) -> Result<(), Diagnostic> {
        match value {
            serde_json::Value::Array(items) if labels_left == 0 => {
                for item in items {
                    self.blocks(kind, item, 0, labels, parents, schema, loc, out)?;
                }
                Ok(())
            }
            serde_json::Value::Object(map) if labels_left == 0 => {
                let body = self.body(map, parents, schema, loc.clone())?;
                out.push(Block {
                    kind: kind.to_string(),
                    labels: labels.clone(),
                    body,
                    location: loc.clone(),
                });
                Ok(())
            }
            serde_json::Value::Object(map) => {
                for (label, inner) in map {
                    let inner_loc = self.locate(label);
                    labels.push(label.clone());
                    let r = self.blocks(
                        kind,
                        inner,
                        labels_left - 1,
                        labels,
                        parents,
                        schema,
                        &inner_loc,
                        out,
                    );
                    labels.pop();
                    r?;
                }
                Ok(())
            }
            _ => Err(Diagnostic::error(
                format!("Invalid {kind} block"),
                format!(
                    "expected a JSON object for the {kind} block{}",
                    if labels_left > 0 { " labels" } else { "" }
                ),
                Some(loc),
            )),
        }
    }
}

/// Converts a JSON value to an HCL expression: strings with `${` or `%{` are templates.
pub fn json_expr(v: &serde_json::Value) -> Expression {
    match v {
        serde_json::Value::Null => Expression::Null,
        serde_json::Value::Bool(b) => Expression::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Expression::Number(i.into()),
            (_, Some(u), _) => Expression::Number(u.into()),
            (_, _, Some(f)) => {
                hcl::Number::from_f64(f).map_or(Expression::Null, Expression::Number)
            }
            _ => Expression::Null,
        },
        serde_json::Value::String(s) if s.contains("${") || s.contains("%{") => {
            Expression::TemplateExpr(Box::new(TemplateExpr::QuotedString(s.clone())))
        }
        serde_json::Value::String(s) => Expression::String(s.clone()),
        serde_json::Value::Array(a) => Expression::Array(a.iter().map(json_expr).collect()),
        serde_json::Value::Object(o) => Expression::Object(
            o.iter()
                .map(|(k, v)| (hcl::ObjectKey::from(k.as_str()), json_expr(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Schema;
    impl JsonSchema for Schema {
        fn block_labels(&self, parents: &[&str], key: &str) -> Option<usize> {
            match (parents.last().copied(), key) {
                (None, "key_provider") => Some(2),
                (None, "state") => Some(0),
                _ => None,
            }
        }
    }

    #[test]
    fn hcl_locations_point_at_lines() {
        let f: Arc<str> = "main.tf".into();
        let b = parse_hcl(
            &f,
            "\n\nkey_provider \"pbkdf2\" \"a\" {\n  passphrase = var.p\n}\n",
        )
        .unwrap();
        assert_eq!(b.blocks[0].labels, ["pbkdf2", "a"]);
        assert_eq!(b.blocks[0].location.line, 3);
        assert_eq!(b.blocks[0].body.attributes[0].location.line, 4);
        let err = parse_hcl(&f, "a = \n").unwrap_err();
        assert_eq!(err.location.unwrap().line, 1);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let f: Arc<str> = "deep.hcl".into();
        let deep = format!(
            "a = {}1{}\n",
            "[".repeat(MAX_NESTING + 1),
            "]".repeat(MAX_NESTING + 1)
        );
        let d = parse_hcl(&f, &deep).unwrap_err();
        assert_eq!(d.summary, "Configuration nested too deeply");
        assert!(parse_json(
            &f,
            &format!("{{\"a\": {}1{}}}", "[".repeat(100), "]".repeat(100)),
            &Schema
        )
        .is_err());
        let ok = format!(
            "a = {}1{}\n",
            "[".repeat(MAX_NESTING),
            "]".repeat(MAX_NESTING)
        );
        assert!(parse_hcl(&f, &ok).is_ok());
    }

    #[test]
    fn json_blocks_labels_and_templates() {
        let f: Arc<str> = "x.json".into();
        let src = "{\n \"key_provider\": {\"pbkdf2\": {\"a\": {\"passphrase\": \"${var.p}\"}}},\n \"state\": {\"method\": \"method.aes_gcm.x\"}\n}";
        let b = parse_json(&f, src, &Schema).unwrap();
        assert_eq!(b.blocks[0].labels, ["pbkdf2", "a"]);
        assert!(matches!(
            b.blocks[0].body.attributes[0].expr,
            Expression::TemplateExpr(_)
        ));
        assert_eq!(b.blocks[1].kind, "state");
        assert_eq!(b.blocks[1].location.line, 3);
        assert!(parse_json(&f, "[]", &Schema).is_err());
    }
}
