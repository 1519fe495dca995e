//! The built-in functions available in static evaluation: the subset of Terraform's function
//! library that makes sense in key-provider and method configuration.

use base64::Engine as _;
use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};
use hcl::Value;

type F = fn(FuncArgs) -> Result<Value, String>;

/// Declares every supported function in `ctx`.
pub fn declare(ctx: &mut Context) {
    use ParamType::{Any, String as S};
    let table: &[(&str, &[ParamType], Option<ParamType>, F)] = &[
        ("lower", &[S], None, |a| Ok(s(&a[0]).to_lowercase().into())),
        ("upper", &[S], None, |a| Ok(s(&a[0]).to_uppercase().into())),
        ("trimspace", &[S], None, |a| Ok(s(&a[0]).trim().into())),
        ("chomp", &[S], None, |a| {
            Ok(s(&a[0]).trim_end_matches(['\n', '\r']).into())
        }),
        ("replace", &[S, S, S], None, |a| {
            Ok(s(&a[0]).replace(s(&a[1]), s(&a[2])).into())
        }),
        ("split", &[S, S], None, |a| {
            Ok(Value::Array(
                s(&a[1]).split(s(&a[0])).map(Value::from).collect(),
            ))
        }),
        ("join", &[S], Some(Any), |a| {
            let sep = s(&a[0]).to_string();
            let mut parts = Vec::new();
            for list in a.iter().skip(1) {
                for v in list.as_array().ok_or("join: expected lists of strings")? {
                    parts.push(to_str(v)?);
                }
            }
            Ok(parts.join(&sep).into())
        }),
        ("format", &[S], Some(Any), |a| format(s(&a[0]), &a[1..])),
        ("base64encode", &[S], None, |a| {
            Ok(b64().encode(s(&a[0])).into())
        }),
        ("base64decode", &[S], None, |a| {
            let bytes = b64()
                .decode(s(&a[0]))
                .map_err(|e| format!("base64decode: {e}"))?;
            String::from_utf8(bytes)
                .map(Value::from)
                .map_err(|_| "base64decode: the result is not valid UTF-8".into())
        }),
        ("jsonencode", &[Any], None, |a| {
            serde_json::to_string(&a[0])
                .map(Value::from)
                .map_err(|e| e.to_string())
        }),
        ("jsondecode", &[S], None, |a| {
            let v: serde_json::Value =
                serde_json::from_str(s(&a[0])).map_err(|e| format!("jsondecode: {e}"))?;
            hcl::to_value(v).map_err(|e| e.to_string())
        }),
        ("sha1", &[S], None, |a| {
            Ok(hex(ring::digest::digest(
                &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                s(&a[0]).as_bytes(),
            )
            .as_ref())
            .into())
        }),
        ("sha256", &[S], None, |a| {
            Ok(
                hex(ring::digest::digest(&ring::digest::SHA256, s(&a[0]).as_bytes()).as_ref())
                    .into(),
            )
        }),
        ("sha512", &[S], None, |a| {
            Ok(
                hex(ring::digest::digest(&ring::digest::SHA512, s(&a[0]).as_bytes()).as_ref())
                    .into(),
            )
        }),
        ("base64sha256", &[S], None, |a| {
            Ok(b64()
                .encode(ring::digest::digest(
                    &ring::digest::SHA256,
                    s(&a[0]).as_bytes(),
                ))
                .into())
        }),
        ("base64sha512", &[S], None, |a| {
            Ok(b64()
                .encode(ring::digest::digest(
                    &ring::digest::SHA512,
                    s(&a[0]).as_bytes(),
                ))
                .into())
        }),
        ("file", &[S], None, |a| {
            std::fs::read_to_string(s(&a[0]))
                .map(Value::from)
                .map_err(|e| format!("file({:?}): {e}", s(&a[0])))
        }),
        ("fileexists", &[S], None, |a| {
            Ok(std::path::Path::new(s(&a[0])).is_file().into())
        }),
        ("tostring", &[Any], None, |a| to_str(&a[0]).map(Value::from)),
        ("tonumber", &[Any], None, |a| match &a[0] {
            Value::Number(_) => Ok(a[0].clone()),
            Value::String(t) => t.trim().parse::<i64>().map(Value::from).or_else(|_| {
                t.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("tonumber: {t:?} is not a number"))
                    .map(Value::from)
            }),
            _ => Err("tonumber: expected a number or a string".into()),
        }),
        ("tolist", &[Any], None, |a| Ok(a[0].clone())),
        ("toset", &[Any], None, |a| Ok(a[0].clone())),
        ("tomap", &[Any], None, |a| Ok(a[0].clone())),
        ("sensitive", &[Any], None, |a| Ok(a[0].clone())),
        ("nonsensitive", &[Any], None, |a| Ok(a[0].clone())),
        ("length", &[Any], None, |a| match &a[0] {
            Value::String(t) => Ok(Value::from(t.chars().count() as u64)),
            Value::Array(x) => Ok(Value::from(x.len() as u64)),
            Value::Object(o) => Ok(Value::from(o.len() as u64)),
            _ => Err("length: expected a string, list or map".into()),
        }),
        ("concat", &[], Some(Any), |a| {
            let mut out = Vec::new();
            for l in a.iter() {
                out.extend(
                    l.as_array()
                        .ok_or("concat: expected lists")?
                        .iter()
                        .cloned(),
                );
            }
            Ok(Value::Array(out))
        }),
        ("merge", &[], Some(Any), |a| {
            let mut out = hcl::Map::new();
            for m in a.iter() {
                if m.is_null() {
                    continue;
                }
                out.extend(
                    m.as_object()
                        .ok_or("merge: expected maps")?
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
            }
            Ok(Value::Object(out))
        }),
        ("lookup", &[Any, S], Some(Any), |a| {
            let m = a[0].as_object().ok_or("lookup: expected a map")?;
            match (m.get(s(&a[1])), a.get(2)) {
                (Some(v), _) => Ok(v.clone()),
                (None, Some(d)) => Ok(d.clone()),
                (None, None) => Err(format!("lookup: the map has no key {:?}", s(&a[1]))),
            }
        }),
        ("coalesce", &[], Some(Any), |a| {
            a.iter()
                .find(|v| !v.is_null() && v.as_str() != Some(""))
                .cloned()
                .ok_or_else(|| "coalesce: no non-null, non-empty argument".into())
        }),
        ("element", &[Any, Any], None, |a| {
            let l = a[0].as_array().ok_or("element: expected a list")?;
            let i = a[1]
                .as_u64()
                .ok_or("element: expected a whole-number index")? as usize;
            if l.is_empty() {
                return Err("element: the list is empty".into());
            }
            Ok(l[i % l.len()].clone())
        }),
        ("substr", &[S, Any, Any], None, |a| {
            let chars: Vec<char> = s(&a[0]).chars().collect();
            let off = a[1].as_i64().ok_or("substr: expected a number")?;
            let len = a[2].as_i64().ok_or("substr: expected a number")?;
            let start = if off < 0 {
                chars.len() as i64 + off
            } else {
                off
            }
            .clamp(0, chars.len() as i64) as usize;
            let end = if len < 0 {
                chars.len()
            } else {
                (start + len as usize).min(chars.len())
            };
            Ok(chars[start..end].iter().collect::<String>().into())
        }),
    ];
    for (name, params, variadic, f) in table {
        let mut b = FuncDef::builder().params(params.iter().cloned());
        if let Some(v) = variadic {
            b = b.variadic_param(v.clone());
        }
        ctx.declare_func(*name, b.build(*f));
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn to_str(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err("cannot convert a list, map or null to a string".into()),
    }
}

/// Terraform's `format` for the verbs `%s`, `%d`, `%v`, `%q` and `%%`.
fn format(fmt: &str, args: &[Value]) -> Result<Value, String> {
    let mut out = String::new();
    let mut it = fmt.chars();
    let mut next = args.iter();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('%') => out.push('%'),
            Some(verb @ ('s' | 'd' | 'v' | 'q')) => {
                let v = next.next().ok_or("format: not enough arguments")?;
                let t = to_str(v)?;
                if verb == 'q' {
                    out.push_str(&serde_json::to_string(&t).map_err(|e| e.to_string())?);
                } else {
                    out.push_str(&t);
                }
            }
            other => {
                return Err(format!(
                    "format: unsupported verb %{}",
                    other.map(String::from).unwrap_or_default()
                ))
            }
        }
    }
    Ok(out.into())
}
